"""`pydl demo` in the Python API: LeNet-5 on the handwritten digits at 1x28x28.

    pip install ".[demo]" && python examples/train_lenet_digits.py [OUT_DIR]
"""
import sys

import pydl
from pydl.data import DataLoader, Digits, transforms as T
from pydl.data.preprocessing import channel_stats
from pydl.models import LeNet5
from pydl.train import Trainer

out = sys.argv[1] if len(sys.argv) > 1 else "pydl-example"
pydl.manual_seed(0)

# data: 1,438 training and 359 test digits, resized from 8x8; normalised with the training
# set's mean and std; random shifts of up to 2 pixels as augmentation
mean, std = channel_stats(Digits(train=True, size=28).arrays()[0])
train_set = Digits(train=True, size=28, transform=T.Compose([T.RandomCrop(28, padding=2), T.Normalize(mean, std)]))
test_set = Digits(train=False, size=28, transform=T.Normalize(mean, std))
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
test_loader = DataLoader(test_set, batch_size=256)

# model, optimizer, one-cycle schedule stepped every batch
epochs = 10
model = LeNet5()
optimizer = pydl.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
scheduler = pydl.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=epochs * len(train_loader),
                                               cycle_momentum=False)

# train: progress bar, a checkpoint per epoch, log.jsonl and curves.png in `out`
trainer = Trainer(model, optimizer, scheduler=scheduler, scheduler_interval="batch", out_dir=out, monitor=None,
                  val_label="test (watched only)")
trainer.fit(train_loader, test_loader, epochs=epochs)
print(f"test accuracy {trainer.evaluate(test_loader)['val_accuracy'] * 100:.2f} %; files in {out}/")

# test-time augmentation: average the predictions over the image and its one-pixel shifts
tta = T.TestTimeAugmentation(model, T.tta_views(hflip=False, shift=1))
tta_accuracy = Trainer(tta, None, progress=False).evaluate(test_loader)["val_accuracy"]
print(f"with test-time augmentation {tta_accuracy * 100:.2f} %")
