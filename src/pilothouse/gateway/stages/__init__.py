"""The stages of a model call, one module each; `gateway/pipeline.py` lists them in order (`STAGES`)."""
