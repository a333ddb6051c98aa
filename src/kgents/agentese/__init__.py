"""AGENTESE: `<context>.<holon>.<aspect>` paths an agent (or `kgents invoke`) resolves to what its memory knows.

`await invoke(AgentContext(settings), "self.vitals.triad.health")` (`agentese.invoke`) returns a TriadHealth; see
`handlers` for every registered path. No UI imports here.
"""
