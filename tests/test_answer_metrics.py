"""EM and F1 on hand-worked cases, including SQuAD normalisation edge cases."""

import pytest

from rag_bench.scoring.answer import exact_match, f1_score, normalize_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Beatles", "beatles"),
        ("an apple a day", "apple day"),
        ("  Paris,   France. ", "paris france"),
        ("U.S.A.", "usa"),
        ("the theory of the thing", "theory of thing"),  # only whole-word articles go
        ("Thea", "thea"),
        ("Wilhelm Conrad Röntgen", "wilhelm conrad röntgen"),  # non-ASCII letters are kept
        ("1,000", "1000"),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_em_ignores_case_articles_and_punctuation():
    assert exact_match("the Eiffel Tower!", ["Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0


def test_em_takes_the_best_of_several_gold_answers():
    assert exact_match("December 1972", ["14 December 1972 UTC", "December 1972"]) == 1.0


def test_em_unicode_is_not_folded():
    # SQuAD's official normalisation strips ASCII punctuation only; accents stay significant.
    assert exact_match("Rontgen", ["Röntgen"]) == 0.0
    assert exact_match("RÖNTGEN", ["Röntgen"]) == 1.0
    # Unicode punctuation (en dash) is not in string.punctuation, so it is kept.
    assert exact_match("1940–1942", ["1940 1942"]) == 0.0


def test_f1_hand_worked():
    # prediction tokens: [wilhelm, röntgen]; gold: [wilhelm, conrad, röntgen]
    # common 2, precision 2/2, recall 2/3 -> F1 = 2*1*(2/3)/(1+2/3) = 0.8
    assert f1_score("Wilhelm Röntgen", ["Wilhelm Conrad Röntgen"]) == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_once_each():
    # pred [new, new, york], gold [new, york]: common = min counts -> new:1, york:1 = 2
    # precision 2/3, recall 1 -> F1 = 0.8
    assert f1_score("new new york", ["New York"]) == pytest.approx(0.8)


def test_f1_max_over_gold_and_zero_overlap():
    assert f1_score("1972", ["14 December 1972 UTC", "1972"]) == 1.0
    assert f1_score("Paris", ["London"]) == 0.0


def test_f1_empty_after_normalisation():
    # "the" normalises to nothing: equal only to an answer that also normalises to nothing
    assert f1_score("the", ["a"]) == 1.0
    assert f1_score("the", ["Paris"]) == 0.0
