"""Class labels and model metadata from Python: Trainer.fit with text labels,
the classes a network carries (saved, loaded, used by evaluate and
predict_classes), a CLI-trained model's labels and feature names through
Network.load, and EarlyStopping saying what it did."""

from __future__ import annotations

import json

import numpy as np
import pytest

import backpropx as bx

NAMES = np.array(["setosa", "versicolor", "virginica"])


def blobs(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.standard_normal((3, d))
    codes = rng.integers(0, 3, n)
    return centers[codes] + rng.standard_normal((n, d)), codes


def classifier(outputs=3, seed=0):
    return bx.Network([bx.Dense(4, 8, activation="relu"), bx.Dense(8, outputs, activation="softmax")],
                      seed=seed, dtype="float64")


def test_text_labels_train_exactly_as_their_sorted_codes():
    X, codes = blobs()
    labels = NAMES[codes]
    by_text, by_code = classifier(), classifier()
    h_text = bx.Trainer(by_text, batch_size=8).fit(X, labels, epochs=3, verbose=0,
                                                   validation_data=(X, list(labels)))
    h_code = bx.Trainer(by_code, batch_size=8).fit(X, codes, epochs=3, verbose=0, validation_data=(X, codes))
    assert by_text.classes == list(NAMES) and by_code.classes is None
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert h_text[key] == h_code[key]
    for a, b in zip(by_text.parameters(), by_code.parameters()):
        np.testing.assert_array_equal(a, b)


def test_predictions_and_evaluate_agree_on_the_labels():
    X, codes = blobs()
    labels = NAMES[codes]
    net = classifier()
    trainer = bx.Trainer(net, optimizer=bx.Adam(lr=1e-2), batch_size=8)
    trainer.fit(X, labels, epochs=20, verbose=0)
    predicted = net.predict_classes(X)
    assert predicted.dtype.kind == "U" and set(predicted) <= set(NAMES)
    assert trainer.evaluate(X, labels)["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert np.array_equal(predicted, NAMES[net.predict(X).argmax(axis=1)])
    assert trainer.evaluate(X, labels)["accuracy"] > 0.8


def test_classes_are_saved_and_loaded_with_the_network(tmp_path):
    X, codes = blobs()
    net = classifier()
    bx.Trainer(net, batch_size=8).fit(X, NAMES[codes], epochs=1, verbose=0)
    net.save(tmp_path / "m.safetensors")
    loaded = bx.Network.load(tmp_path / "m.safetensors")
    assert loaded.classes == list(NAMES) and loaded.metadata == {"classes": json.dumps(list(NAMES))}
    assert np.array_equal(loaded.predict_classes(X), net.predict_classes(X))
    # Fine-tuning the loaded model keeps reading labels through its classes.
    bx.Trainer(loaded, batch_size=8).fit(X, NAMES[codes], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y\[0\] is \d, which is not one of the network's classes"):
        bx.Trainer(loaded).evaluate(X, codes)


def test_numeric_labels_of_a_network_with_classes_are_labels_not_codes():
    X, codes = blobs()
    odd = np.array([3, 5, 7])[codes]
    net = classifier()
    net.metadata["classes"] = json.dumps([3, 5, 7])
    trainer = bx.Trainer(net, batch_size=8)
    trainer.fit(X, odd, epochs=2, verbose=0)
    assert set(net.predict_classes(X)) <= {3, 5, 7}
    assert trainer.evaluate(X, odd)["accuracy"] == pytest.approx(np.mean(net.predict_classes(X) == odd))


def test_binary_text_labels_with_one_sigmoid_output():
    X, codes = blobs()
    y = np.where(codes == 0, "no", "yes")
    net = bx.Network([bx.Dense(4, 6, activation="tanh"), bx.Dense(6, 1, activation="sigmoid")], seed=0)
    trainer = bx.Trainer(net, loss="binary_cross_entropy", optimizer=bx.Adam(lr=1e-2), batch_size=8)
    trainer.fit(X, y, epochs=30, verbose=0)
    assert net.classes == ["no", "yes"]
    assert np.mean(net.predict_classes(X) == y) > 0.9


@pytest.mark.parametrize("case, error, match", [
    ("too many labels", ValueError, r"4 distinct labels .* but the network has 3 outputs"),
    ("validation label unknown", ValueError, r"validation y\[1\] is 'rose', which is not one of"),
    ("mse", TypeError, r"mse needs numeric targets"),
    ("mixed types", TypeError, r"mixes label types"),
])
def test_bad_labels_raise_and_leave_the_network_unchanged(case, error, match):
    X, codes = blobs()
    labels = NAMES[codes].astype(object)
    net = classifier()
    kwargs = {}
    loss = "cross_entropy"
    if case == "too many labels":
        labels[0] = "rose"
    elif case == "validation label unknown":
        kwargs["validation_data"] = (X[:3], ["setosa", "rose", "setosa"])
    elif case == "mse":
        loss = "mse"
    elif case == "mixed types":
        labels[0] = 1
    before = net.state_dict()
    with pytest.raises(error, match=match):
        bx.Trainer(net, loss=loss).fit(X, labels, epochs=1, verbose=0, **kwargs)
    assert net.metadata == {} and net.classes is None
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


def test_evaluating_text_labels_needs_classes():
    X, codes = blobs()
    with pytest.raises(ValueError, match="the network has no classes"):
        bx.Trainer(classifier()).evaluate(X, NAMES[codes])


def test_damaged_classes_metadata_is_a_clear_error():
    net = classifier()
    net.metadata["classes"] = "[1, 2"
    with pytest.raises(ValueError, match=r"metadata\['classes'\] is not valid JSON"):
        _ = net.classes
    net.metadata["classes"] = json.dumps(["a", "a", "b"])
    with pytest.raises(ValueError, match="lists a value twice"):
        _ = net.classes


def test_cli_trained_model_exposes_classes_and_feature_names(tmp_path):
    from backpropx.cli import main

    X, codes = blobs()
    path = tmp_path / "iris.csv"
    with open(path, "w") as f:
        f.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
        for row, label in zip(X, NAMES[codes]):
            f.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")
    assert main(["train", str(path), "--target", "species", "--epochs", "2", "--quiet",
                 "--out", str(tmp_path / "iris.safetensors")]) == 0
    net = bx.Network.load(tmp_path / "iris.safetensors")
    assert net.classes == list(NAMES)
    assert net.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert net.metadata["task"] == "classification" and net.metadata["target"] == "species"
    assert set(net.predict_classes(X)) <= set(NAMES)


def test_extra_metadata_adds_to_the_networks_and_wins(tmp_path):
    net = classifier()
    net.metadata.update({"classes": json.dumps(["a", "b", "c"]), "note": "old"})
    net.save(tmp_path / "m.safetensors", extra_metadata={"note": "new"})
    assert bx.Network.load(tmp_path / "m.safetensors").metadata == {"classes": '["a", "b", "c"]', "note": "new"}
    net.metadata["bad"] = 3
    with pytest.raises(TypeError, match=r"extra_metadata\['bad'\] must be a string"):
        net.save(tmp_path / "n.safetensors")
    assert not (tmp_path / "n.safetensors").exists()


# ---- EarlyStopping says what it did ------------------------------------------------
class Fake(bx.Callback):
    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs):
        logs["fake"] = self.values[epoch - 1]


@pytest.mark.parametrize("fit_verbose, own, speaks", [(1, None, True), (2, None, True), (0, None, False),
                                                      (0, 1, True), (1, 0, False)])
def test_early_stopping_reports_stop_and_restore(capsys, fit_verbose, own, speaks):
    X, codes = blobs()
    stop = bx.EarlyStopping(monitor="fake", patience=2, restore_best_weights=True, verbose=own)
    bx.Trainer(classifier(), batch_size=16).fit(X, codes, epochs=6, verbose=fit_verbose,
                                                callbacks=[Fake([3.0, 1.0, 2.0, 2.5, 0.1, 0.1]), stop])
    out = capsys.readouterr().out
    lines = ["early stopping after epoch 4: fake has not improved for 2 epochs (best 1 at epoch 2)",
             "restored the weights of epoch 2 (fake 1)"]
    for line in lines:
        assert (line in out) == speaks, out


def test_early_stopping_is_silent_about_restoring_the_last_epoch(capsys):
    X, codes = blobs()
    stop = bx.EarlyStopping(monitor="fake", patience=5, restore_best_weights=True)
    bx.Trainer(classifier(), batch_size=16).fit(X, codes, epochs=3, verbose=2,
                                                callbacks=[Fake([3.0, 2.0, 1.0]), stop])
    out = capsys.readouterr().out
    assert "early stopping" not in out and "restored" not in out


def test_early_stopping_verbose_is_validated():
    with pytest.raises(ValueError, match="verbose must be None"):
        bx.EarlyStopping(verbose=3)
