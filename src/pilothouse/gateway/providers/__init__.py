"""Providers: the `Provider` base class (`base`), one transport module per upstream API with its wire format
beside it (`openai_compat` + `openai_wire`, `anthropic` + `anthropic_wire`, over `_http` and `errors`), the
in-process `local` provider (`local_runtime`, `local_chat`), a deterministic `fake`, and the `registry`."""
