"""The roles of the process graph, each a component with an explicit step; no role knows which
driver runs it."""
