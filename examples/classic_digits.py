"""Lectures 2-3 on the 8x8 digits: k-nearest neighbours (k chosen by cross-validation),
linear classifiers with the SVM and softmax losses, closed-form least squares.

    pip install ".[data]" && python examples/classic_digits.py
"""
from pydl.classic import KNearestNeighbors, LeastSquaresClassifier, LinearClassifier, cross_validate
from pydl.data.datasets import load_digits_arrays

x_train, y_train = load_digits_arrays(train=True)           # (1438, 1, 8, 8), values in [0, 1]
x_test, y_test = load_digits_arrays(train=False)            # (359, 1, 8, 8)

# choose k and the distance by 5-fold cross-validation on the training set only
scores = {}
for metric in ("l1", "l2"):
    for k in (1, 3, 5, 7):
        scores[metric, k] = cross_validate(lambda: KNearestNeighbors(k, metric), x_train, y_train, k=5)["mean"]
        print(f"k-NN {metric} k={k}: cross-validation accuracy {scores[metric, k] * 100:.2f} %")
metric, k = max(scores, key=scores.get)
knn = KNearestNeighbors(k, metric).fit(x_train, y_train)
print(f"chosen: {metric}, k={k} -> test accuracy {knn.score(x_test, y_test) * 100:.2f} %")

for loss in ("svm", "softmax"):
    clf = LinearClassifier(loss, reg=1e-4, epochs=50).fit(x_train, y_train)
    print(f"linear classifier, {loss} loss: test accuracy {clf.score(x_test, y_test) * 100:.2f} %")
lsq = LeastSquaresClassifier().fit(x_train, y_train)
print(f"least squares: test accuracy {lsq.score(x_test, y_test) * 100:.2f} %")
