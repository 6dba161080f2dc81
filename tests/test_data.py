from __future__ import annotations

import gzip
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from nnsweep import data as D
from nnsweep.data import _builtin as _builtin_data
from nnsweep.errors import DataError


@pytest.fixture(autouse=True)
def _isolated_keras_cache(tmp_path, monkeypatch):
    """No test may find a real Keras cache or reach the network."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(D.DATA_DIR_ENV, raising=False)

    def no_download(name):
        raise OSError(f"download of {name} refused in tests")

    monkeypatch.setattr(_builtin_data, "_keras_download", no_download)


def _sequences(rng, n, vocab):
    return np.array(
        [list(rng.integers(1, vocab, size=rng.integers(3, 12))) for _ in range(n)], dtype=object
    )


def write_imdb(folder: Path, n=40, vocab=60) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        folder / "imdb.npz",
        x_train=_sequences(rng, n, vocab),
        y_train=rng.integers(0, 2, n),
        x_test=_sequences(rng, n // 2, vocab),
        y_test=rng.integers(0, 2, n // 2),
    )


def write_reuters(folder: Path, n=50, vocab=60) -> None:
    rng = np.random.default_rng(1)
    y = np.arange(n) % 46
    np.savez(folder / "reuters.npz", x=_sequences(rng, n, vocab), y=y)


def write_fashion(folder: Path, n_train=30, n_test=10) -> None:
    sub = folder / "fashion-mnist"
    sub.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        with gzip.open(sub / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 2049, n) + labels.tobytes())
        with gzip.open(sub / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())


def write_mnist(folder: Path, n=20) -> None:
    rng = np.random.default_rng(3)
    np.savez(
        folder / "mnist.npz",
        x_train=rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
        y_train=rng.integers(0, 10, n).astype(np.uint8),
        x_test=rng.integers(0, 256, (n // 2, 28, 28)).astype(np.uint8),
        y_test=rng.integers(0, 10, n // 2).astype(np.uint8),
    )


def test_digits_is_multiclass_images_with_a_test_split():
    ds = D.load_dataset("digits")
    assert ds.spec.task == "multiclass" and ds.spec.n_classes == 10
    assert ds.spec.input_shape == (8, 8)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.spec.loss == "sparse_categorical_crossentropy" and ds.spec.metric == "accuracy"


def test_mnist_from_the_data_directory(data_dir):
    ds = D.load_dataset("mnist", data_dir=data_dir)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == pytest.approx(1.0)
    assert ds.spec.n_classes == 10


def test_boston_is_standardized_with_training_statistics_only(data_dir):
    ds = D.load_dataset("boston_housing", data_dir=data_dir)
    assert ds.spec.task == "regression" and ds.spec.metric == "mae"
    assert ds.x_train.shape == (404, 13) and ds.x_test.shape == (102, 13)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(ds.x_test.mean(axis=0)).max() > 1e-3  # test rows were not used for scaling


def test_data_dir_from_environment(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    monkeypatch.setenv(D.DATA_DIR_ENV, str(tmp_path))
    assert D.load_dataset("mnist").x_train.shape == (20, 28, 28)


def test_keras_cache_is_the_second_place_looked(tmp_path):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    write_mnist(cache, n=8)
    assert D.load_dataset("mnist").x_train.shape == (8, 28, 28)


def test_missing_dataset_error_names_all_three_places(tmp_path):
    with pytest.raises(DataError) as info:
        D.load_dataset("mnist", data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "data directory" in message and "Keras cache" in message
    assert "Keras download (download of mnist refused in tests)" in message


def test_imdb_multi_hot_follows_keras_indexing(tmp_path):
    write_imdb(tmp_path)
    ds = D.load_dataset("imdb", data_dir=tmp_path, options={"num_words": 20})
    assert ds.spec.task == "binary" and ds.spec.input_shape == (20,)
    assert ds.x_train.shape == (40, 20) and ds.x_test.shape == (20, 20)
    assert set(np.unique(ds.x_train)) <= {0.0, 1.0}
    assert ds.x_train[:, 1].all()  # Keras's start character is in every review
    assert not ds.x_train[:, 0].any()  # 0 is padding, never a word
    # A word of rank r is index r + 3; ranks >= num_words - 3 become out-of-vocabulary (2).
    raw = np.load(tmp_path / "imdb.npz", allow_pickle=True)  # the test's own file
    order = np.arange(40)
    np.random.RandomState(113).shuffle(order)
    first = np.asarray(raw["x_train"][order[0]]) + 3
    expected = np.zeros(20)
    expected[1] = 1
    expected[np.where(first < 20, first, 2)] = 1
    np.testing.assert_array_equal(ds.x_train[0], expected)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _planted(marker: Path, n: int) -> np.ndarray:
    seqs = np.empty(n, dtype=object)
    seqs[:] = [[1, 5, 7]] * n
    seqs[n // 2] = _RunsCode(marker)
    return seqs


@pytest.mark.parametrize("name", ["imdb", "reuters", "user-npz"])
def test_a_planted_pickle_in_a_data_file_never_runs(tmp_path, name):
    marker = tmp_path / "code-ran"
    # The payload does run under NumPy's own allow_pickle=True: the test would catch it.
    probe = tmp_path / "probe.npz"
    np.savez(probe, x=_planted(tmp_path / "probe-ran", 4))
    np.load(probe, allow_pickle=True)["x"]
    assert (tmp_path / "probe-ran").exists()

    y = np.arange(40) % 2
    if name == "imdb":
        np.savez(tmp_path / "imdb.npz", x_train=_planted(marker, 40), y_train=y,
                 x_test=_planted(marker, 20), y_test=y[:20])  # fmt: skip
        load = lambda: D.load_dataset("imdb", data_dir=tmp_path)  # noqa: E731
        expected = "is not a plain array of word sequences (refused global posix.system)"
    elif name == "reuters":
        np.savez(tmp_path / "reuters.npz", x=_planted(marker, 40), y=y)
        load = lambda: D.load_dataset("reuters", data_dir=tmp_path)  # noqa: E731
        expected = "could run code"
    else:
        np.savez(tmp_path / "mine.npz", x=_planted(marker, 40), y=y)
        load = lambda: D.load_dataset(str(tmp_path / "mine.npz"))  # noqa: E731
        expected = "array 'x' is an object array, which nnsweep never loads"
    with pytest.raises(DataError, match=re.escape(expected)):
        load()
    assert not marker.exists()


def test_a_user_npz_of_object_arrays_is_refused_even_when_harmless(tmp_path):
    x = np.empty(10, dtype=object)
    x[:] = [[1.0, 2.0]] * 10
    np.savez(tmp_path / "mine.npz", x=x, y=np.arange(10) % 2)
    with pytest.raises(DataError, match="object array"):
        D.load_dataset(str(tmp_path / "mine.npz"))


def test_sequence_files_written_by_numpy_1_pickles_read_the_same(tmp_path):
    """Keras's own files were written long ago: protocol 2, NumPy 1's module names."""
    import io
    import pickle
    import zipfile

    write_imdb(tmp_path)
    expected = D.load_dataset("imdb", data_dir=tmp_path, options={"num_words": 20})
    old = tmp_path / "old"
    old.mkdir()
    with (
        zipfile.ZipFile(tmp_path / "imdb.npz") as src,
        zipfile.ZipFile(old / "imdb.npz", "w") as dst,
    ):
        for member in src.namelist():
            raw = src.read(member)
            array = np.load(io.BytesIO(raw), allow_pickle=True)
            if array.dtype.hasobject:
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    head, np.lib.format.header_data_from_array_1_0(array)
                )
                body = pickle.dumps(array, protocol=2).replace(
                    b"numpy._core.multiarray", b"numpy.core.multiarray"
                )
                assert b"numpy.core.multiarray" in body
                raw = head.getvalue() + body  # the header starts with the magic
            dst.writestr(member, raw)
    got = D.load_dataset("imdb", data_dir=old, options={"num_words": 20})
    np.testing.assert_array_equal(got.x_train, expected.x_train)
    np.testing.assert_array_equal(got.y_test, expected.y_test)


def test_reuters_has_46_classes_and_an_80_20_split(tmp_path):
    write_reuters(tmp_path)
    ds = D.load_dataset("reuters", data_dir=tmp_path)
    assert ds.spec.task == "multiclass" and ds.spec.n_classes == 46
    assert ds.spec.input_shape == (10_000,)
    assert len(ds.x_train) == 40 and len(ds.x_test) == 10


def test_fashion_mnist_from_idx_files(tmp_path):
    write_fashion(tmp_path)
    ds = D.load_dataset("fashion_mnist", data_dir=tmp_path)
    assert ds.x_train.shape == (30, 28, 28) and ds.x_test.shape == (10, 28, 28)
    assert ds.spec.n_classes == 10


def test_bad_num_words_is_a_data_error(tmp_path):
    write_imdb(tmp_path)
    with pytest.raises(DataError, match="num_words"):
        D.load_dataset("imdb", data_dir=tmp_path, options={"num_words": "many"})


def test_csv_with_target_column_infers_the_task(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "houses.csv"
    rows = ["rooms,age,price"] + [
        f"{rng.integers(1, 9)},{rng.uniform(0, 90):.2f},{rng.uniform(50, 500):.3f}"
        for _ in range(30)
    ]
    path.write_text("\n".join(rows) + "\n")
    ds = D.load_dataset(str(path), target="price")
    assert ds.spec.task == "regression" and ds.spec.input_shape == (2,)
    assert len(ds.x_train) == 24 and len(ds.x_test) == 6
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-5)


@pytest.mark.parametrize(
    "content, match",
    [
        ("a,b\n1,2\n3,4\n", "no target column 'target'"),
        ("a,target\nx,1\ny,0\n", "must be numeric"),
    ],
)
def test_bad_csv_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        D.load_dataset(str(path))


def test_missing_csv_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        D.load_dataset(str(tmp_path / "none.csv"))


def test_function_data_and_its_errors():
    x = np.random.default_rng(0).normal(size=(50, 3))
    ds = D.load_dataset(lambda: (x, (x[:, 0] > 0).astype(int)))
    assert ds.spec.task == "binary" and len(ds.x_train) == 40
    ds = D.load_dataset(lambda: ((x[:40], x[:40, 0]), (x[40:], x[40:, 0])))
    assert ds.spec.task == "regression" and len(ds.x_test) == 10
    with pytest.raises(DataError, match="50 rows but targets have 49"):
        D.load_dataset(lambda: (x, np.zeros(49)))
    with pytest.raises(DataError, match="must return"):
        D.load_dataset(lambda: x)
    with pytest.raises(DataError, match="raised ZeroDivisionError"):
        D.load_dataset(lambda: 1 / 0)


def test_task_override_and_inference():
    assert D.infer_task(np.array([0, 1, 1])) == "binary"
    assert D.infer_task(np.array([0, 3, 2])) == "multiclass"
    assert D.infer_task(np.array([0.5, 1.0])) == "regression"
    x = np.random.default_rng(0).normal(size=(20, 2))
    ds = D.load_dataset(lambda: (x, np.arange(20) % 2), options={"task": "multiclass"})
    assert ds.spec.task == "multiclass" and ds.spec.n_classes == 2
    with pytest.raises(DataError, match="task"):
        D.load_dataset(lambda: (x, x[:, 0]), options={"task": "ranking"})


def test_splits_are_seeded_disjoint_and_cached():
    ds = D.load_dataset("digits")
    a = ds.split(0.2, split_seed=0, cv=None, fold=0)
    assert a is ds.split(0.2, 0, None, 0)
    assert len(a.x_val) == round(len(ds.x_train) * 0.2)
    assert len(a.x_fit) + len(a.x_val) == len(ds.x_train)
    b = ds.split(0.2, split_seed=1, cv=None, fold=0)
    assert not np.array_equal(a.y_val, b.y_val)
    folds = [ds.split(0.2, 0, cv=4, fold=k) for k in range(4)]
    assert sum(len(f.x_val) for f in folds) == len(ds.x_train)
    assert all(len(f.x_fit) + len(f.x_val) == len(ds.x_train) for f in folds)


def test_the_built_in_tasks_known_without_loading_match_the_loaded_data(data_dir):
    from nnsweep.data import load_dataset
    from nnsweep.data._builtin import BUILTIN_TASKS

    for name in ("digits", "mnist", "boston_housing"):  # the ones this machine has
        spec = load_dataset(name, data_dir=data_dir).spec
        assert BUILTIN_TASKS[name] == (spec.task, spec.n_classes), name
