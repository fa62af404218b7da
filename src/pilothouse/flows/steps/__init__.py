"""Step kinds: plain Python, approval, map, subflow (and LLM, tool, guard, agent)."""
