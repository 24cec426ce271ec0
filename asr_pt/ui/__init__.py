"""The Space's page, one module per tab: `transcribe`, `live`, `batch`, `review`, `data`, `explorer`; `timings` adds
word timings to the Transcribe and Review tabs; `status` loads the two models and says how they are; `page` puts the
tabs together and launches. Every callback calls a plain function that tests call."""

from asr_pt.ui.page import build_demo, launch
from asr_pt.ui.status import Models

__all__ = ["Models", "build_demo", "launch"]
