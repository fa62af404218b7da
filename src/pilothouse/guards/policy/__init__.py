"""Guard policies: which scanners run on a call's input and output, and what a hit does (block, redact, flag,
shadow); how trace content is redacted before storage.

`model.py` is the policy file's shape, `loader.py` reads and checks a file, `engine.py` builds scanners and runs
rules, `streaming.py` guards a streamed answer with a hold-back window, `storage.py` redacts trace content,
`spans.py` records decisions as `guard` spans, `active.py` holds the policies in force and `runtime.py` is what
the gateway's guard stages use (`gateway/stages/input_guard.py`, `gateway/stages/output_guard.py`).
"""
