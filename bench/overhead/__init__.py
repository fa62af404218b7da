"""The parts of the gateway overhead benchmark; `bench/gateway_overhead.py` is its entry point.

common     paths, keys, the request every target gets, errors and logging
processes  the servers' subprocesses (own process groups, CPU pinning) and free ports
wrk        running wrk, its Lua script and parsing its output
load       CPU time: of a process group, of everything else on the machine, quiet windows
measure    warm-up + measured run of one target, repeated while other work skews it
targets    the upstream, LiteLLM (and its virtual environment) and Pilothouse: started, ready, checked
profile    py-spy samples of a gateway under load and their summary
report     the ratios against Pilothouse's targets, the table, the JSON form and the machine of a result
runner     one whole benchmark run, in a temporary working directory
"""
