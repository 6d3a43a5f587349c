"""rp_eval: fine-tune, merge, chat with and evaluate Japanese role-play chat models."""

__version__ = "0.1.0"
