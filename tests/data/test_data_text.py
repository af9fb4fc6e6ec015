from speechssl2.text import normalize_text


def test_lowercases_and_strips_punctuation():
    assert normalize_text("Call-Forward on No Answer.") == "call forward on no answer"
    assert normalize_text("  Hello,\tWORLD!!  ") == "hello world"


def test_apostrophes_survive_only_inside_words():
    assert normalize_text("Don't say 'hello'") == "don't say hello"
    assert normalize_text("rock’n’roll'") == "rock'n'roll"  # typographic apostrophes too


def test_keeps_non_latin_letters_and_digits():
    assert normalize_text("Привет, мир! L'été 28.8") == "привет мир l'été 28 8"


def test_only_punctuation_gives_empty():
    assert normalize_text(" ... -- ! ") == ""
