"""The seeds' recipe for a new network (lecture 8), on the 8x8 digits with an MLP:
check the initial loss, overfit a small sample, find a learning rate, then a random
search (log-uniform) for the learning rate and weight decay, coarse then fine.

    pip install ".[data]" && python examples/recipe_and_search.py
"""
import pydl
from pydl.data import DataLoader, Digits
from pydl.models import get_model
from pydl.train import LogUniform, Trainer, check_initial_loss, coarse_to_fine, lr_range_test, overfit_small_sample

train, val = pydl.data.random_split(Digits(train=True), [0.8, 0.2], generator=0)   # never tune on the test set
x, y = next(iter(DataLoader(train, batch_size=512)))


def mlp():
    return get_model("mlp", in_features=64, num_classes=10, hidden=(128,))


pydl.manual_seed(0)
r = check_initial_loss(mlp(), x, y)
print(f"1. initial loss {r['loss']:.3f}, expected log(10) = {r['expected']:.3f}: {'ok' if r['ok'] else 'CHECK INIT'}")

net = mlp()
r = overfit_small_sample(net, pydl.optim.Adam(net.parameters(), lr=1e-2), x[:32], y[:32], steps=200)
print(f"2. 32 samples overfit: accuracy {r['accuracy'] * 100:.0f} %, loss {r['loss']:.4f}")

net = mlp()
r = lr_range_test(net, pydl.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
                  DataLoader(train, batch_size=64, shuffle=True), start_lr=1e-5, end_lr=10, num_iter=100)
print(f"3. LR range test: lowest loss at lr {r['min_loss_lr']:.3g}; suggested lr {r['suggested_lr']:.3g}")


def objective(params, epochs):
    pydl.manual_seed(0)
    net = mlp()
    opt = pydl.optim.SGD(net.parameters(), lr=params["lr"], momentum=0.9, weight_decay=params["weight_decay"])
    trainer = Trainer(net, opt, progress=False)
    trainer.fit(DataLoader(train, 64, shuffle=True), DataLoader(val, 256), epochs=epochs)
    return trainer.history["val_accuracy"][-1]


space = {"lr": LogUniform(1e-4, 1.0), "weight_decay": LogUniform(1e-6, 1e-2)}
coarse, fine = coarse_to_fine(lambda p: objective(p, 2), space, n_coarse=12, n_fine=6,
                              fine_objective=lambda p: objective(p, 6))
print("4. coarse search (2 epochs), best trials:\n" + coarse.table(3))
print("   fine search (6 epochs), best trials:\n" + fine.table(3))
