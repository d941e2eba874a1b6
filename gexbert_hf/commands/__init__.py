"""One module per `gexbert` subcommand: its arguments dataclass, reading and writing files, the output policy and
what it prints. The library (inference, training, data) knows nothing of them; `gexbert_hf.cli` only parses."""
