import pytest
from almanac.core.chunking import CHARS_PER_TOKEN, chunk_text


def test_short_text_is_one_chunk(hash_embedder):
    chunks = chunk_text("one two three", hash_embedder, max_tokens=10)
    assert [c.text for c in chunks] == ["one two three"]
    assert (chunks[0].start, chunks[0].end) == (0, 13)


def test_chunks_respect_limit_and_offsets(hash_embedder):
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = chunk_text(text, hash_embedder, max_tokens=50, overlap=10)
    assert len(chunks) > 20
    for c in chunks:
        assert c.n_tokens <= 50
        assert text[c.start : c.end] == c.text
        assert len(hash_embedder.token_spans(c.text)) == c.n_tokens
    # consecutive chunks overlap by the requested tokens and cover everything
    assert chunks[0].end > chunks[1].start
    assert chunks[-1].end == len(text)


def test_prefers_paragraph_then_sentence_boundaries(hash_embedder):
    para1 = " ".join(["alpha"] * 30) + "."
    para2 = " ".join(["beta"] * 30) + "."
    chunks = chunk_text(para1 + "\n\n" + para2, hash_embedder, max_tokens=45)
    assert chunks[0].text == para1
    sentences = "First sentence here. " * 5 + "Tail words without end " * 3
    chunks = chunk_text(sentences, hash_embedder, max_tokens=17)
    assert chunks[0].text.endswith(".")


def test_never_splits_a_word_with_real_tokenizer(real_embedder):
    text = "Internationalization and antidisestablishmentarianism are long words. " * 60
    chunks = chunk_text(text, real_embedder, max_tokens=40, overlap=8)
    for c in chunks:
        assert c.n_tokens <= 40
        # re-tokenizing the chunk alone gives the same count: nothing the model would truncate
        assert len(real_embedder.token_spans(c.text)) == c.n_tokens
        assert c.start == 0 or text[c.start - 1].isspace()
        assert c.end == len(text) or text[c.end].isspace() or not text[c.end].isalnum()


def test_model_limit_holds_for_long_unbroken_strings(real_embedder):
    text = "x" * 5000 + " tail"
    chunks = chunk_text(text, real_embedder, max_tokens=real_embedder.max_tokens)
    assert all(c.n_tokens <= real_embedder.max_tokens for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_rejects_silly_limits(hash_embedder):
    with pytest.raises(ValueError):
        chunk_text("a b c", hash_embedder, max_tokens=2)


def test_character_cap_splits_a_pathological_token(hash_embedder):
    word = "y" * 1_000_000
    text = "Start here. " + word + " and the end."
    chunks = chunk_text(text, hash_embedder, max_tokens=50)
    cap = 50 * CHARS_PER_TOKEN
    assert all(len(c.text) <= cap and text[c.start : c.end] == c.text for c in chunks)
    assert len(chunks) >= 1_000_000 // cap
    assert "".join(c.text for c in chunks if set(c.text) == {"y"}) == word
    assert chunks[0].text == "Start here." and chunks[-1].text == "and the end."


def test_character_cap_bounds_chunks_of_long_tokens(hash_embedder):
    text = " ".join(f"{i:04d}" + "z" * 150 for i in range(300))  # each "word" far longer than usual
    chunks = chunk_text(text, hash_embedder, max_tokens=200, max_chars=1000)
    assert all(len(c.text) <= 1000 for c in chunks)
    assert all(c.start == 0 or text[c.start - 1] == " " for c in chunks)  # still never mid-word
    assert chunks[-1].end == len(text)


def test_character_cap_leaves_ordinary_text_alone(hash_embedder):
    text = "The quick brown fox jumps over the lazy dog. " * 400
    capped = chunk_text(text, hash_embedder, max_tokens=60, overlap=8)
    uncapped = chunk_text(text, hash_embedder, max_tokens=60, overlap=8, max_chars=10**9)
    assert capped == uncapped


@pytest.mark.slow
def test_five_megabyte_word_with_real_tokenizer(real_embedder):
    word = "q" * 5_000_000
    chunks = chunk_text(f"head {word} tail", real_embedder, max_tokens=real_embedder.max_tokens)
    cap = real_embedder.max_tokens * CHARS_PER_TOKEN
    assert all(len(c.text) <= cap for c in chunks) and len(chunks) >= 5_000_000 // cap
    assert all(len(real_embedder.token_spans(c.text)) == c.n_tokens <= real_embedder.max_tokens for c in chunks)
    assert "".join(c.text for c in chunks if set(c.text) == {"q"}) == word
