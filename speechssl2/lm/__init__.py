"""Language models: KenLM n-grams (``ngram``) and a Transformer LM over tokenizer units (``transformer_lm``)."""
