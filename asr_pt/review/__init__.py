"""Review: the store reviewers correct transcripts in, and what feeds it and reads it (import, export, Hub sync,
reviewer logins, the scoreboard). Importing `asr_pt.review.store` registers the `store:DATA_DIR` corpus scheme."""
