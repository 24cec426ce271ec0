import unicodedata

import pytest

from asr_pt.text import normalize, written_form


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bom dia", "Bom dia."),  # the card's examples
        ("o gato dorme...", "O gato dorme."),
        ("como estás?", "Como estás?"),  # the question mark stays; the first letter is still capitalised
        ("Como estás?", "Como estás?"),
        ('"oi"', '"Oi"'),
        ("  olá mundo  ", "Olá mundo."),
        ("ótimo", "Ótimo."),
        ("é isso!", "É isso!"),
        ("ok…", "Ok."),
        ("espera….", "Espera."),
        ("3 gatos", "3 gatos."),  # a leading digit leaves the text alone
        ("(risos) sim", "(Risos) sim."),  # the first letter, not the first character
        ("Já Está", "Já Está."),
        ("«vamos»", "«Vamos»"),
        ("fim)", "Fim)"),
        ("...", "."),
        ("…", "."),
        ("", ""),
        ("   ", ""),
        (None, ""),
    ],
)
def test_written_form(text, expected):
    assert written_form(text) == expected


def test_written_form_is_idempotent():
    texts = [
        "bom dia",
        "o gato dorme...",
        "como estás?",
        '"oi"',
        "...",
        "…",
        "ok…",
        "a . . .",
        "  ",
        "",
        ".",
        "3 gatos",
        "1º lugar",
        "ótimo",
        "ÓTIMO",
        "é",
        "'aspas simples'",
        "“curvas”",
        "‹x›",
        "[música] olá",
        "ß straße",
        "olá!!!",
        "hein?!",
        "então . ",
        "fim..",
        " .. a ..  ",
        "ﬁm",
        "ação\n",
    ]
    for text in texts:
        once = written_form(text)
        assert written_form(once) == once, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("O Gato, dorme!", "o gato dorme"),
        ("ação", "ação"),  # diacritics are kept
        ("[música] bom   dia (risos)", "bom dia"),
        ("«Olá» — disse-me ele…", "olá disse me ele"),
        ("custa 5€ + 10%", "custa 5 10"),
        ("ＡＢＣ", "abc"),  # NFKC folds full-width letters
        ("", ""),
        (None, ""),
        ("  ...  ", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_normalize_composes_decomposed_accents():
    decomposed = unicodedata.normalize("NFD", "Ação e avô")
    assert decomposed != "Ação e avô"
    assert normalize(decomposed) == "ação e avô"
    assert normalize(decomposed) == normalize("ação e avô")


def test_normalize_keeps_combining_marks_that_do_not_compose():
    # 'q' + combining acute has no precomposed form: the mark survives rather than becoming a space
    assert normalize("Q\u0301a") == "q\u0301a"
