"""Rolling a prompt version out: gated promotion, canary splits watched under a rollback rule, per-version stats.

`promotion` moves a label only when the candidate passes the scenario tests and is no worse; `canary_rule`
decides (a sequential test), `canary_check` judges one canary from its traces and rolls it back,
`canary_monitor` checks every canary in the background; `performance` is each version's statistics;
`outcomes` tells a caller's mistake from the version's failure.
"""
