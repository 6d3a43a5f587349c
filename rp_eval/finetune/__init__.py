"""Fine-tuning for role-play: data → labels that end on a real EOS id → a LoRA / QLoRA training run.

- `data`: conversations from JSONL (OpenAI `messages` or ShareGPT) or a `datasets` dataset, a persona each;
- `labels`: tokenisation with the model's prompt format, loss on assistant turns, the end id appended as an id,
  the check that refuses an end marker that would be learned as text, and a preview with special tokens shown;
- `job`: the training run in a background thread (peft + transformers Trainer), progress, cancel, resume,
  the adapter moved into place and registered;
- `memory`: when gradient checkpointing is needed ("auto", the rule written down) and how the base is loaded
  (bf16, or NF4 with double quantisation for QLoRA);
- `merge_full`: the adapter merged into its base as a full model (peft's `merge_and_unload`), registered;
- `stopcheck`: after training, how often replies end by themselves, next to the base model.
"""
