"""The language menu the page's tabs share: Portuguese first, then automatic detection, then every language qwen-asr
can be forced to."""

from asr_pt.models import AUTO_LANGUAGE, DEFAULT_LANGUAGE, supported_languages


def language_choices() -> list[tuple[str, str]]:
    """(label, value) pairs for a `gr.Dropdown`."""
    others = [(name, name) for name in supported_languages() if name != DEFAULT_LANGUAGE]
    return [("Portuguese", DEFAULT_LANGUAGE), ("Automatic detection", AUTO_LANGUAGE), *others]
