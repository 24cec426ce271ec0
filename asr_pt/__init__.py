"""asr-pt: Portuguese speech recognition with Qwen3-ASR-1.7B-PT, and the loop that improves it."""
