"""Ensembles: the average of the members' probabilities, from models or from checkpoints."""
import numpy as np
import pytest

import pydl
from pydl.data import DataLoader, Spirals
from pydl.models import get_model
from pydl.train import Ensemble, Trainer, load_ensemble


def test_ensemble_averages_probabilities(rng):
    pydl.manual_seed(0)
    nets = [pydl.nn.Linear(4, 3) for _ in range(3)]
    x = pydl.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    out = Ensemble(nets)(x)
    probs = [pydl.nn.functional.softmax(n(x), dim=1).data for n in nets]
    np.testing.assert_allclose(np.exp(out.data), np.mean(probs, axis=0), rtol=1e-5)
    weighted = Ensemble(nets, weights=[1, 0, 0])(x)
    np.testing.assert_allclose(np.exp(weighted.data), probs[0], rtol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
    with pytest.raises(ValueError, match="weight"):
        Ensemble(nets, weights=[1, -1, 1])


def test_ensemble_of_checkpoints_beats_its_average_member(tmp_path):
    val = DataLoader(Spirals(train=False), 300)
    accs, paths = [], []
    for seed in range(3):
        pydl.manual_seed(seed)
        net = get_model("mlp", in_features=2, num_classes=3, hidden=(16,))
        trainer = Trainer(net, pydl.optim.Adam(net.parameters(), lr=0.01), out_dir=tmp_path / str(seed),
                          progress=False, plot=False)
        trainer.fit(DataLoader(Spirals(), 32, shuffle=True), val, epochs=8)
        accs.append(trainer.evaluate(val)["val_accuracy"])
        paths.append(tmp_path / str(seed) / "checkpoint.safetensors")
    ens = load_ensemble(lambda: get_model("mlp", in_features=2, num_classes=3, hidden=(16,)), paths)
    acc = Trainer(ens, None, progress=False).evaluate(val)["val_accuracy"]
    assert acc >= np.mean(accs) - 0.02
    pydl.save({"x": pydl.ones(1)}, tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="junk.safetensors does not fit"):
        load_ensemble(lambda: get_model("mlp", in_features=2, num_classes=3, hidden=(16,)),
                      [tmp_path / "junk.safetensors"])
