"""Inference backends (QA_BACKEND): every runtime gives what torch fp32 gives, exports are
made once and redone when stale, a missing package names its install line, and an index
of other vectors is rebuilt."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa.config import BACKENDS, DEFAULT_READER_THRESHOLD, Settings
from qa.embeddings import bert_graph, runtime
from qa.embeddings.embedder import load_embedder
from qa.embeddings.runtime import Backend
from qa.errors import ModelError, SettingsError
from qa.index import load_or_build
from qa.reader import Reader

OTHERS = [b for b in BACKENDS if b != "torch"]

SENTENCES = [
    "Le conseil municipal a adopté le budget primitif à l'unanimité jeudi soir.",
    "Quelle est la peine encourue pour ce délit ?",
    "La grève des contrôleurs aériens a entraîné l'annulation de 400 vols à Orly.",
    "Qui dirige l'entreprise depuis 2019 ?",
    "Les sapeurs-pompiers ont maîtrisé l'incendie après six heures d'efforts.",
    "Le gouvernement prévoit une hausse de 4,6 % du salaire minimum au 1er janvier.",
    "« C'est une victoire pour tous les salariés », s'est félicitée la syndicaliste.",
    "Où se déroulera la prochaine édition du salon ?",
    "L'équipe de France s'est inclinée 2-1 face à l'Espagne en demi-finale.",
    "Le parquet a ouvert une information judiciaire pour homicide involontaire.",
    "Combien d'élèves sont concernés par la fermeture des classes ?",
    "La sécheresse menace les récoltes de maïs dans le Sud-Ouest.",
    "Le film a attiré plus d'un million de spectateurs en deux semaines.",
    "Pourquoi la ligne de métro a-t-elle été fermée ?",
    "Les loyers ont augmenté de 3,5 % en un an dans les grandes villes.",
    "Le préfet a pris un arrêté interdisant la baignade dans le lac.",
    "Selon l'étude, un Français sur trois renonce à des soins pour raison financière.",
    "Quand le pont sera-t-il rouvert à la circulation ?",
    "L'entreprise a annoncé la suppression de 1 200 postes en Europe.",
    "La cathédrale a retrouvé sa flèche, cinq ans après l'incendie.",
]

READINGS = [
    ("Quelle est la peine prévue pour le prévenu ?",
     ["Paris est la capitale de la France et compte deux millions d'habitants.",
      "Le tribunal a prononcé une peine de deux ans de prison avec sursis contre le prévenu, "
      "jugé pour fraude fiscale."]),
    ("Combien de spectateurs le festival a-t-il accueillis ?",
     ["Le festival a accueilli plus de 150 000 spectateurs en cinq jours, un record.",
      "La mairie a refait la chaussée de la rue principale pendant l'été."]),
]


@pytest.fixture(scope="module")
def torch_reader(settings_for_tests, converted_model) -> Reader:
    return Reader.load(settings_for_tests.cache_dir)


@pytest.mark.parametrize("backend", OTHERS)
def test_vectors_agree_with_torch(backend, settings_for_tests, torch_embedder):
    embedder = load_embedder(replace(settings_for_tests, backend=backend))
    assert embedder.backend == backend
    assert embedder.fingerprint == torch_embedder.fingerprint
    assert embedder.dim == torch_embedder.dim
    assert embedder.count_tokens(SENTENCES[0]) == torch_embedder.count_tokens(SENTENCES[0])
    for kind in ("query", "passage"):
        vectors = embedder.encode(SENTENCES, kind)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        cosine = (vectors * torch_embedder.encode(SENTENCES, kind)).sum(axis=1)
        assert cosine.min() >= 0.99, (kind, cosine.min())
        if backend in ("onnx", "openvino"):  # the written graph computes what torch does
            assert cosine.min() >= 0.9999, (kind, cosine.min())
    # One text alone or in a batch of longer ones: padding changes nothing, but for
    # dynamic int8 (onnx-int8), whose activation scales are the batch's, and bf16's
    # rounding, which depends on the kernels chosen for the batch's shape.
    alone = embedder.encode(SENTENCES[:1], "query")[0]
    batched = embedder.encode(SENTENCES, "query")[0]
    # On OpenVINO a question alone runs on the copy compiled for FIXED_TOKENS, whose
    # kernels round otherwise.
    floor = {"onnx-int8": 0.995, "openvino-bf16": 0.999}.get(
        backend, 0.9995 if backend.startswith("openvino") else 0.99999)
    assert float(alone @ batched) >= floor


def test_the_defaults_are_the_measured_ones(embedder):
    assert Settings().backend == "openvino-int8"
    assert Settings().reader_backend == "openvino-bf16"
    assert embedder.backend == "openvino-int8"  # the suite runs on the default end to end


@pytest.mark.parametrize("backend", OTHERS)
def test_readings_agree_with_torch(backend, settings_for_tests, torch_reader):
    reader = Reader.load(settings_for_tests.cache_dir, backend=backend)
    precision = Backend.parse(backend).precision
    for question, passages in READINGS:
        got, want = reader.read(question, passages), torch_reader.read(question, passages)
        best = int(np.argmax([r.relevance for r in want]))
        assert int(np.argmax([r.relevance for r in got])) == best
        g, w = got[best], want[best]
        if precision != "fp32":  # int8 or bf16 may move a span's edge, never off the answer
            assert g.start < w.end and w.start < g.end
            # ONNX Runtime's dynamic int8 moves the no-answer probability most (0.23 on
            # one of these), never across the refusal threshold on these clear cases.
            assert abs(g.no_answer - w.no_answer) < (0.1 if precision == "bf16" else 0.3)
            assert ((g.no_answer > DEFAULT_READER_THRESHOLD)
                    == (w.no_answer > DEFAULT_READER_THRESHOLD))
        else:
            assert (g.start, g.end) == (w.start, w.end)
            assert abs(g.relevance - w.relevance) < 0.05
            assert abs(g.no_answer - w.no_answer) < 0.01
    # One short window: on OpenVINO, the fixed-shape copy, whose per-token logits come
    # back padded and must be cut to the window.
    question, passage = "Qui a gagné la course ?", "Marie Curie a gagné la course."
    got, want = reader.read(question, [passage])[0], torch_reader.read(question, [passage])[0]
    assert passage[got.start:got.end] == passage[want.start:want.end] == "Marie Curie"


def test_the_default_models_are_made_without_torch(tmp_path, converted_model):
    """What `make run` starts before pip has installed torch: a fresh cache, the
    checkpoint converted and its graph written and run, with torch and
    sentence-transformers unimportable."""
    script = (
        "import sys\n"
        "sys.modules.update(torch=None, sentence_transformers=None, transformers=None)\n"
        "from dataclasses import replace\n"
        "from qa.config import Settings\n"
        "from qa.embeddings.embedder import load_embedder\n"
        f"settings = replace(Settings(), cache_dir={str(tmp_path)!r}, backend='onnx')\n"
        "vector = load_embedder(settings).encode(['Qui dirige Shein ?'], 'query')[0]\n"
        "print(round(float(vector @ vector), 4))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1.0"
    assert (tmp_path / "models").is_dir()


def test_a_checkpoint_of_another_shape_is_traced_not_written(tmp_path, converted_model):
    assert bert_graph.buildable(converted_model)
    other = tmp_path / "cls-pooling"
    shutil.copytree(converted_model, other, ignore=shutil.ignore_patterns("*.safetensors"))
    (other / "model.safetensors").touch()
    (other / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": True}))
    assert not bert_graph.buildable(other)
    assert not bert_graph.buildable(tmp_path / "missing")


def test_an_export_is_made_once_and_redone_when_stale(tmp_path):
    made = []

    def export(path: Path) -> None:
        made.append(path.name)
        path.write_text(f"graph {len(made)}")

    first = runtime.exported(tmp_path, "g", "stamp-1", export, Backend("onnx"))
    again = runtime.exported(tmp_path, "g", "stamp-1", export, Backend("onnx"))
    assert first == again and first.read_text() == "graph 1" and len(made) == 1
    runtime.exported(tmp_path, "g", "stamp-2", export, Backend("onnx"))  # new weights
    assert first.read_text() == "graph 2"


def test_two_processes_asking_at_once_make_an_export_once(tmp_path):
    made = []

    def slow_export(path: Path) -> None:
        made.append(path.name)
        time.sleep(0.5)
        path.write_text("graph")

    with ThreadPoolExecutor(2) as pool:  # each call opens the lock file on its own
        paths = list(pool.map(lambda _: runtime.exported(tmp_path, "g", "s", slow_export,
                                                         Backend("onnx")), range(2)))
    assert paths[0] == paths[1] and paths[0].read_text() == "graph" and made == ["g.onnx"]


def test_an_interrupted_export_leaves_nothing_half_written(tmp_path):
    def broken(path: Path) -> None:
        path.write_text("half a graph")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runtime.exported(tmp_path, "g", "s", broken, Backend("onnx"))
    assert [p.name for p in tmp_path.iterdir()] == [".g.lock"]  # the lock, empty

    def export(path: Path) -> None:
        path.write_text("whole")

    assert runtime.exported(tmp_path, "g", "s", export, Backend("onnx")).read_text() == "whole"


@pytest.mark.parametrize(("backend", "module", "line"), [
    ("onnx", "onnxruntime", "pip install onnxruntime"),
    ("openvino", "openvino", "pip install openvino"),
    ("openvino-int8", "nncf", "pip install nncf"),
])
def test_a_missing_package_names_its_install_line(backend, module, line, monkeypatch,
                                                  settings_for_tests):
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like
    with pytest.raises(ModelError) as caught:
        load_embedder(replace(settings_for_tests, backend=backend))
    assert line in str(caught.value) and module in str(caught.value)
    with pytest.raises(ModelError, match="pip install"):
        Reader.load(settings_for_tests.cache_dir, backend=backend)


def test_backend_setting_is_checked():
    assert Settings.from_env({"QA_BACKEND": "onnx-int8"}).backend == "onnx-int8"
    with pytest.raises(SettingsError, match="QA_BACKEND"):
        Settings.from_env({"QA_BACKEND": "tensorrt"})
    with pytest.raises(SettingsError, match="QA_READER_BACKEND"):
        Settings.from_env({"QA_READER_BACKEND": "gpu"})
    with pytest.raises(SettingsError, match="QA_THREADS"):
        Settings.from_env({"QA_THREADS": "-1"})


def test_an_index_of_other_vectors_is_rebuilt_not_mixed(fresh_settings, torch_embedder,
                                                        embedder, caplog):
    built, _ = load_or_build(fresh_settings, torch_embedder)
    assert built.manifest.shape.embedding.backend == "torch"
    with caplog.at_level(logging.INFO, logger="qa"):
        rebuilt, _ = load_or_build(fresh_settings, embedder)
    assert rebuilt.manifest.shape.embedding.backend == "openvino-int8"
    assert "QA_BACKEND=torch" in caplog.text
    assert rebuilt.n_chunks == built.n_chunks


def test_an_index_of_an_older_export_recipe_is_rebuilt(fresh_settings, embedder, caplog):
    older = copy.copy(embedder)
    older.export = runtime.EXPORT_VERSION - 1  # what an index built before the recipe moved says
    built, _ = load_or_build(fresh_settings, older)
    assert built.manifest.shape.embedding.export == runtime.EXPORT_VERSION - 1
    with caplog.at_level(logging.INFO, logger="qa"):
        rebuilt, _ = load_or_build(fresh_settings, embedder)
    assert rebuilt.manifest.shape.embedding.export == runtime.EXPORT_VERSION
    assert "autre recette" in caplog.text
