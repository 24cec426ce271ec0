import unicodedata

import pytest

from asr_pt.metrics import Scores, align_words, prepare, score, score_pair


def test_written_protocol_counts_case_and_punctuation():
    # words: "O"/"o" and "dorme."/"dorme" differ, "gato" matches: 2 errors in 3 words
    # characters: "O"/"o" substituted and "." deleted: 2 errors in the 13 of "O gato dorme."
    scores = score_pair("O gato dorme.", "o gato dorme")
    assert scores.wer == pytest.approx(200 / 3)
    assert scores.cer == pytest.approx(200 / 13)


def test_normalized_protocol_ignores_case_and_punctuation():
    assert score_pair("O gato dorme.", "o gato dorme", "normalized") == Scores(wer=0.0, cer=0.0)


def test_written_protocol_puts_the_reference_in_written_form_and_only_strips_the_hypothesis():
    assert prepare("  bom dia ", "  bom dia  ") == ("Bom dia.", "bom dia")
    assert score_pair("bom dia", "  Bom dia.  ") == Scores(wer=0.0, cer=0.0)


def test_missing_accents_are_errors_in_both_protocols():
    # written: "Ação." vs "Acao.": 1 of 1 words; "ç"/"c" and "ã"/"a": 2 of 5 characters
    assert score_pair("Ação.", "Acao.") == Scores(wer=100.0, cer=40.0)
    # normalised: "ação" vs "acao": 1 of 1 words, 2 of 4 characters
    assert score_pair("Ação.", "Acao.", "normalized") == Scores(wer=100.0, cer=50.0)


def test_decomposed_accents_count_in_the_written_protocol_only():
    # the author compares the texts as they are: "Ação," "avô" "café." differ in form, "e" does not: 3 of 4 words
    decomposed = unicodedata.normalize("NFD", "Ação, avô e café.")
    assert decomposed != "Ação, avô e café."
    assert score_pair(decomposed, "Ação, avô e café.").wer == 75.0
    assert score_pair(decomposed, "Ação, avô e café.", "normalized") == Scores(wer=0.0, cer=0.0)


def test_normalized_protocol_aligns_compounds_and_spells_numbers():
    assert score_pair("O guarda-chuva custa 25 euros.", "o guardachuva custa vinte e cinco euros", "normalized") == (
        Scores(wer=0.0, cer=0.0)
    )


def test_corpus_score_is_total_errors_over_total_words_not_the_mean_of_utterances():
    references = ["sim", "o gato dorme no sofá"]
    hypotheses = ["não", "o gato dorme no sofá"]
    per_utterance = [score_pair(r, h, "normalized").wer for r, h in zip(references, hypotheses, strict=True)]
    assert per_utterance == [100.0, 0.0]  # mean 50
    # 1 substituted word over 1 + 5 reference words
    assert score(references, hypotheses, "normalized").wer == pytest.approx(100 / 6)


def test_cer_counts_characters_including_spaces():
    assert score_pair("casa", "caso", "normalized").cer == pytest.approx(25.0)  # 1 of 4
    assert score_pair("Bom dia.", "Bomdia.").cer == pytest.approx(100 / 8)  # the space, 1 of 8
    assert score_pair("bom dia", "bomdia", "normalized").cer == 0.0  # the leaderboard joins the compound first


def test_an_empty_reference_scores_the_inserted_words():
    assert score_pair("", "") == Scores(wer=0.0, cer=0.0)
    assert score_pair("[música]", "", "normalized") == Scores(wer=0.0, cer=0.0)  # empty once normalised
    assert score_pair("", "olá").wer == 100.0
    assert score_pair("", "olá mundo").wer == 200.0
    # in a corpus it adds no reference words but its insertions count: 1 error over the 2 words of "bom dia"
    assert score(["", "bom dia"], ["olá", "bom dia"], "normalized").wer == pytest.approx(50.0)


def test_score_rejects_bad_input():
    with pytest.raises(ValueError, match="protocol"):
        score_pair("a", "a", "lowercase")
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        score(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no references"):
        score([], [])


def test_align_words_tags_substitutions_insertions_and_deletions():
    assert align_words("o gato dorme no sofá", "ontem o cão dorme sofá") == [
        ("ontem", "insertion"),
        ("o", None),
        ("gato→cão", "substitution"),
        ("dorme", None),
        ("no", "deletion"),
        ("sofá", None),
    ]


def test_align_words_compares_words_as_written():
    assert align_words("Bom dia.", "bom dia") == [("Bom→bom", "substitution"), ("dia.→dia", "substitution")]


def test_align_words_handles_empty_sides():
    assert align_words("", "olá mundo") == [("olá", "insertion"), ("mundo", "insertion")]
    assert align_words("olá mundo", "  ") == [("olá", "deletion"), ("mundo", "deletion")]
    assert align_words("", "") == []
