"""The parts of the gateway benchmarks; `bench/gateway_overhead.py` (bare gateways) and
`bench/gateway_features.py` (caching, budgets and rate limits on, plus a memory soak) are their entry points.

common           paths, keys, the request every target gets, errors and logging
cli              the options both entry points share and their main loop (servers stopped on every exit)
processes        the servers' subprocesses (own process groups, CPU pinning) and free ports
wrk              running wrk, its Lua script and parsing its output
mix              the wrk script that mixes cache hits (one repeated request) and misses (new requests)
load             CPU time: of a process group, of everything else on the machine, quiet windows
measure          warm-up + measured run of one target, repeated while other work skews it
memory           RSS of a server's process group, sampled during a soak of new requests
targets          the upstream, LiteLLM (and its virtual environment) and Pilothouse: started, ready, checked
features         the features each gateway gets, Pilothouse's keys/budget/limits, the run's Redis keys
verify           checks that a gateway's cache, budget and rate limit are on (upstream count, 429 probes)
profile          py-spy samples of a gateway under load and their summary
report           the ratios against Pilothouse's targets, the table, the JSON form and the machine of a result
runner           one whole overhead run, in a temporary working directory
features_runner  one whole features run: checks, mixed measured runs, soaks, what the features did
features_report  the features run's targets (>= 3x LiteLLM, RSS growth <= 10%) and its text report
"""
