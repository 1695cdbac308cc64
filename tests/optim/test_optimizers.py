"""Optimizers against NumPy transcriptions of PyTorch's documented algorithms.

Each ``ref_*`` function below is the pseudo-code of the torch.optim docs page, written out
in float64 for one parameter and its sequence of gradients. The tests run pydl's
optimizer for several steps on float32 parameters with random gradients and compare.
"""
import copy
import math

import numpy as np
import pytest
from parity import assert_close

import pydl
from pydl import optim

STEPS = 7


# --------------------------------------------------------------- reference algorithms
def ref_sgd(theta, grads, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    theta = theta.astype(np.float64)
    b = None
    for t, g in enumerate(grads, 1):
        g = g.astype(np.float64)
        if maximize:  # PyTorch's code negates the gradient first (its docs flip the final sign)
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


def ref_adagrad(theta, grads, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    theta = theta.astype(np.float64)
    state_sum = np.full_like(theta, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        g = -g.astype(np.float64) if maximize else g.astype(np.float64)
        clr = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * theta
        state_sum = state_sum + g * g
        theta = theta - clr * g / (np.sqrt(state_sum) + eps)
    return theta


def ref_rmsprop(theta, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    theta = theta.astype(np.float64)
    v = np.zeros_like(theta)
    g_ave = np.zeros_like(theta)
    b = np.zeros_like(theta)
    for g in grads:
        g = -g.astype(np.float64) if maximize else g.astype(np.float64)
        if weight_decay != 0:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g * g
        v_tilde = v
        if centered:
            g_ave = g_ave * alpha + (1 - alpha) * g
            v_tilde = v_tilde - g_ave * g_ave
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            theta = theta - lr * b
        else:
            theta = theta - lr * g / (np.sqrt(v_tilde) + eps)
    return theta


def ref_adam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
             decoupled=False):
    beta1, beta2 = betas
    theta = theta.astype(np.float64)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        g = -g.astype(np.float64) if maximize else g.astype(np.float64)
        if weight_decay != 0:
            if decoupled:  # AdamW
                theta = theta - lr * weight_decay * theta
            else:
                g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        if amsgrad:  # the running max of the raw second moment, then bias-corrected (PyTorch's code)
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def ref_adamw(theta, grads, weight_decay=1e-2, **kw):
    return ref_adam(theta, grads, weight_decay=weight_decay, decoupled=True, **kw)


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, weight_decay=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, weight_decay=0.1, maximize=True)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    (optim.Adagrad, ref_adagrad, dict(lr=0.1, eps=1e-3, maximize=True)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, momentum=0.9)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.8, centered=True, momentum=0.5, eps=1e-6)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, centered=True, maximize=True)),
    (optim.Adam, ref_adam, dict(lr=0.01)),
    (optim.Adam, ref_adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    (optim.Adam, ref_adam, dict(lr=0.01, amsgrad=True)),
    (optim.Adam, ref_adam, dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True, eps=1e-6)),
    (optim.AdamW, ref_adamw, dict(lr=0.01)),
    (optim.AdamW, ref_adamw, dict(lr=0.01, weight_decay=0.3, betas=(0.5, 0.9))),
    (optim.AdamW, ref_adamw, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, ref_adamw, dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)),
]
CASE_IDS = [f"{cls.__name__}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for cls, _, kw in CASES]

SHAPES = [(3, 4), (5,), ()]


def param(array):
    return pydl.nn.Parameter(pydl.tensor(array))


def make_params(rng, shapes=SHAPES, dtype=np.float32):
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return [param(v) for v in values], values


def make_grads(rng, shapes=SHAPES, steps=STEPS, dtype=np.float32):
    """grads[step][i]: the gradient of parameter i at that step."""
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


def run(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else pydl.tensor(g)
        opt.step()


# ----------------------------------------------------------------------------- updates
@pytest.mark.parametrize("cls,ref,kw", CASES, ids=CASE_IDS)
def test_matches_documented_algorithm(cls, ref, kw, rng):
    params, init = make_params(rng)
    grads = make_grads(rng)
    opt = cls(params, **kw)
    run(opt, params, grads)
    for i, p in enumerate(params):
        expected = ref(init[i], [step[i] for step in grads], **kw)
        assert_close(p.data, expected, np.float32, rtol=2e-5, atol=2e-6, what=f"{cls.__name__} param {i}")


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=CASE_IDS)
def test_float64_parameters_stay_float64(cls, ref, kw, rng):
    params, init = make_params(rng, dtype=np.float64)
    grads = make_grads(rng, dtype=np.float64)
    opt = cls(params, **kw)
    run(opt, params, grads)
    for i, p in enumerate(params):
        expected = ref(init[i], [step[i] for step in grads], **kw)
        assert_close(p.data, expected, np.float64, rtol=1e-10, atol=1e-12, what=f"{cls.__name__} param {i}")


@pytest.mark.parametrize("cls,ref,kw", CASES[::3], ids=CASE_IDS[::3])
def test_multiple_param_groups_use_their_own_options(cls, ref, kw, rng):
    params, init = make_params(rng)
    grads = make_grads(rng)
    group_kw = dict(kw, lr=kw["lr"] * 3, weight_decay=0.2)
    opt = cls([{"params": params[:2]}, {"params": [params[2]], "lr": group_kw["lr"], "weight_decay": 0.2}], **kw)
    assert opt.param_groups[1]["lr"] == group_kw["lr"]
    assert all(opt.param_groups[0][k] == v for k, v in kw.items())
    run(opt, params, grads)
    for i, p in enumerate(params):
        options = kw if i < 2 else group_kw
        expected = ref(init[i], [step[i] for step in grads], **options)
        assert_close(p.data, expected, np.float32, rtol=2e-5, atol=2e-6, what=f"param {i}")


@pytest.mark.parametrize("cls,ref,kw", CASES[::4], ids=CASE_IDS[::4])
def test_parameters_without_gradient_are_skipped(cls, ref, kw, rng):
    params, init = make_params(rng)
    grads = make_grads(rng)
    for step in (1, 4):  # param 1 gets no gradient on these steps: its step count does not advance
        grads[step][1] = None
    for step in grads:
        step[2] = None  # param 2 never gets one
    opt = cls(params, **kw)
    run(opt, params, grads)
    assert np.array_equal(params[2].data, init[2]) and params[2] not in opt.state
    expected = ref(init[1], [step[1] for step in grads if step[1] is not None], **kw)
    assert_close(params[1].data, expected, np.float32, rtol=2e-5, atol=2e-6)


def test_seed_formulas_are_the_same_algorithms(rng):
    """The lecture's update rules, as written in the seeds, give the same steps."""
    x0 = rng.standard_normal(6).astype(np.float32)
    grads = [rng.standard_normal(6).astype(np.float32) for _ in range(STEPS)]
    lr, rho = 0.05, 0.9

    # SGD + momentum: v = rho v + dx; x -= lr v
    x, v = x0.astype(np.float64), 0.0
    for dx in grads:
        v = rho * v + dx
        x = x - lr * v
    p = param(x0)
    run(optim.SGD([p], lr=lr, momentum=rho), [p], [[g] for g in grads])
    assert_close(p.data, x, np.float32)

    # AdaGrad: grad_squared += dx * dx; x -= lr dx / (sqrt(grad_squared) + eps)
    x, grad_squared = x0.astype(np.float64), 0.0
    for dx in grads:
        grad_squared = grad_squared + dx * dx
        x = x - lr * dx / (np.sqrt(grad_squared) + 1e-7)
    p = param(x0)
    run(optim.Adagrad([p], lr=lr, eps=1e-7), [p], [[g] for g in grads])
    assert_close(p.data, x, np.float32)

    # RMSProp: grad_squared = decay grad_squared + (1 - decay) dx dx
    x, grad_squared, decay = x0.astype(np.float64), 0.0, 0.99
    for dx in grads:
        grad_squared = decay * grad_squared + (1 - decay) * dx * dx
        x = x - lr * dx / (np.sqrt(grad_squared) + 1e-7)
    p = param(x0)
    run(optim.RMSprop([p], lr=lr, alpha=decay, eps=1e-7), [p], [[g] for g in grads])
    assert_close(p.data, x, np.float32)

    # Adam with bias correction, beta1 = 0.9, beta2 = 0.99 (the seeds' typical values)
    x, first_moment, second_moment = x0.astype(np.float64), 0.0, 0.0
    beta1, beta2 = 0.9, 0.99
    for t, dx in enumerate(grads, 1):
        first_moment = beta1 * first_moment + (1 - beta1) * dx
        second_moment = beta2 * second_moment + (1 - beta2) * dx * dx
        first_unbias = first_moment / (1 - beta1**t)
        second_unbias = second_moment / (1 - beta2**t)
        x = x - lr * first_unbias / (np.sqrt(second_unbias) + 1e-7)
    p = param(x0)
    run(optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=1e-7), [p], [[g] for g in grads])
    assert_close(p.data, x, np.float32)


def test_adamw_differs_from_adam_l2_only_in_the_decay(rng):
    x0 = rng.standard_normal(5).astype(np.float32)
    grads = [[np.zeros(5, np.float32)] for _ in range(3)]
    p = param(x0)
    run(optim.AdamW([p], lr=0.1, weight_decay=0.5), [p], grads)
    # no gradient signal: only the decoupled decay acts, (1 - lr wd)^3
    assert_close(p.data, x0.astype(np.float64) * (1 - 0.05) ** 3, np.float32)
    q = param(x0)
    run(optim.Adam([q], lr=0.1, weight_decay=0.5), [q], grads[:1])
    # Adam's L2 term goes through the adaptive scaling: the first step moves every weight by lr
    assert_close(q.data, x0 - 0.1 * np.sign(x0), np.float32)


def test_trains_a_quadratic_with_a_closure(rng):
    """Minimise |A x - b|^2 with each optimizer; step(closure) returns the loss."""
    a = rng.standard_normal((8, 4))
    b = rng.standard_normal(8)
    best = np.linalg.lstsq(a, b, rcond=None)[0]
    for cls, kw, steps in [
        (optim.SGD, dict(lr=0.02, momentum=0.9), 300),
        (optim.SGD, dict(lr=0.02, momentum=0.9, nesterov=True), 300),
        (optim.Adagrad, dict(lr=0.5), 500),
        (optim.RMSprop, dict(lr=0.01), 800),
        (optim.Adam, dict(lr=0.05), 600),
        (optim.AdamW, dict(lr=0.05, weight_decay=0.0), 600),
    ]:
        x = param(np.zeros(4))
        opt = cls([x], **kw)

        def closure():
            opt.zero_grad()
            r = a @ x.data - b
            x.grad = pydl.tensor(2 * a.T @ r)
            return float(r @ r)

        losses = [opt.step(closure) for _ in range(steps)]
        assert losses[-1] <= losses[0]
        np.testing.assert_allclose(x.data, best, atol=2e-2, err_msg=f"{cls.__name__} {kw}")


def test_step_with_closure_runs_with_grad_enabled():
    x = param(np.ones(2, np.float32))
    opt = optim.SGD([x], lr=0.1)
    seen = []

    def closure():
        seen.append(pydl.autograd.grad_mode.is_grad_enabled())
        x.grad = pydl.tensor(np.ones(2, np.float32))
        return 1.5

    with pydl.autograd.grad_mode.no_grad():
        assert opt.step(closure) == 1.5
    assert seen == [True]
    assert opt.step() is None


def test_updates_in_place_and_keep_dtype(rng):
    params, _ = make_params(rng)
    arrays = [p.data for p in params]
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, make_grads(rng, steps=2))
    for p, arr in zip(params, arrays):
        assert p.data is arr and p.data.dtype == np.float32


# ----------------------------------------------------------------------- zero_grad
def test_zero_grad(rng):
    params, _ = make_params(rng)
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = pydl.tensor(np.ones(p.shape, np.float32))
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not np.any(p.grad.data) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


# --------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("cls,ref,kw", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_continues_identically(cls, ref, kw, rng):
    params_a, init = make_params(rng)
    grads = make_grads(rng, steps=6)
    opt_a = cls(params_a, **kw)
    run(opt_a, params_a, grads[:3])

    params_b = [param(p.data.copy()) for p in params_a]
    opt_b = cls(params_b, lr=123.0)  # options come from the state dict
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    assert opt_b.param_groups[0]["lr"] == kw["lr"]
    assert opt_b.param_groups[0]["params"][0] is params_b[0]

    run(opt_a, params_a, grads[3:])
    run(opt_b, params_b, grads[3:])
    for pa, pb in zip(params_a, params_b):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_state_dict_layout_is_pytorchs(rng):
    params, _ = make_params(rng)
    opt = optim.Adam([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.1, amsgrad=True)
    run(opt, params, make_grads(rng, steps=2))
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(sd["state"]) == {0, 1, 2}
    s0 = sd["state"][0]
    assert set(s0) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"} and s0["step"] == 2
    assert isinstance(s0["exp_avg"], pydl.Tensor) and s0["exp_avg"].shape == (3, 4)


@pytest.mark.parametrize(
    "cls,kw,keys",
    [
        (optim.SGD, dict(lr=0.1), set()),
        (optim.SGD, dict(lr=0.1, momentum=0.9), {"momentum_buffer"}),
        (optim.Adagrad, dict(), {"step", "sum"}),
        (optim.RMSprop, dict(), {"step", "square_avg"}),
        (optim.RMSprop, dict(momentum=0.9, centered=True), {"step", "square_avg", "momentum_buffer", "grad_avg"}),
        (optim.Adam, dict(), {"step", "exp_avg", "exp_avg_sq"}),
        (optim.AdamW, dict(amsgrad=True), {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
    ],
)
def test_state_keys_are_pytorchs(cls, kw, keys, rng):
    params, _ = make_params(rng)
    opt = cls(params, **kw)
    run(opt, params, make_grads(rng, steps=1))
    state = opt.state_dict()["state"]
    assert set(state.get(0, {})) == keys


def test_load_state_dict_accepts_string_indices_and_list_betas(rng):
    """What comes back from JSON: "0" for 0, a list for a tuple."""
    params, _ = make_params(rng)
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, make_grads(rng, steps=2))
    sd = copy.deepcopy(opt.state_dict())
    sd["state"] = {str(k): v for k, v in sd["state"].items()}
    sd["param_groups"][0]["betas"] = list(sd["param_groups"][0]["betas"])
    opt2 = optim.Adam([param(p.data.copy()) for p in params])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)
    assert len(opt2.state) == 3


def test_load_state_dict_mismatch_raises_and_changes_nothing(rng):
    params, _ = make_params(rng)
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, make_grads(rng, steps=2))
    sd = opt.state_dict()

    other, _ = make_params(rng)
    target = optim.Adam(other, lr=0.3)
    run(target, other, make_grads(rng, steps=1))
    before = copy.deepcopy(target.state_dict())

    with pytest.raises(ValueError, match="different number of parameter groups"):
        target.load_state_dict({"state": {}, "param_groups": sd["param_groups"] * 2})
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        target.load_state_dict({"state": {}, "param_groups": [dict(sd["param_groups"][0], params=[0, 1])]})
    bad = copy.deepcopy(sd)
    bad["state"][2]["exp_avg"] = pydl.tensor(np.zeros((7,), np.float32))
    with pytest.raises(ValueError, match="shape"):
        target.load_state_dict(bad)
    with pytest.raises(ValueError, match="state_dict"):
        target.load_state_dict({"param_groups": []})

    after = target.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i in before["state"]:
        for k, v in before["state"][i].items():
            np.testing.assert_array_equal(np.asarray(getattr(after["state"][i][k], "data", after["state"][i][k])),
                                          np.asarray(getattr(v, "data", v)))


def test_load_state_dict_casts_buffers_to_parameter_dtype(rng):
    params, _ = make_params(rng)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    run(opt, params, make_grads(rng, steps=1))
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = pydl.tensor(sd["state"][0]["momentum_buffer"].data.astype(np.float64))
    opt.load_state_dict(sd)
    assert opt.state[params[0]]["momentum_buffer"].dtype == np.float32


# ---------------------------------------------------------------------- add groups
def test_add_param_group_later(rng):
    params, init = make_params(rng)
    opt = optim.SGD(params[:1], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": params[1], "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[1]["params"] == [params[1]]
    grads = make_grads(rng, steps=2)
    run(opt, params[:2], [g[:2] for g in grads])
    assert_close(params[1].data, ref_sgd(init[1], [g[1] for g in grads], lr=0.01, momentum=0.5), np.float32)


# -------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "cls,kw,message",
    [
        (optim.SGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (optim.SGD, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
        (optim.SGD, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
        (optim.SGD, dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov momentum requires a momentum"),
        (optim.Adagrad, dict(lr=-1e-3), "Invalid learning rate"),
        (optim.Adagrad, dict(lr_decay=-1), "Invalid lr_decay value: -1"),
        (optim.Adagrad, dict(weight_decay=-1), "Invalid weight_decay value"),
        (optim.Adagrad, dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
        (optim.Adagrad, dict(eps=-1), "Invalid epsilon value: -1"),
        (optim.RMSprop, dict(lr=-1), "Invalid learning rate"),
        (optim.RMSprop, dict(alpha=-0.1), "Invalid alpha value: -0.1"),
        (optim.RMSprop, dict(eps=-1), "Invalid epsilon value"),
        (optim.RMSprop, dict(momentum=-1), "Invalid momentum value"),
        (optim.RMSprop, dict(weight_decay=-1), "Invalid weight_decay value"),
        (optim.Adam, dict(lr=-1), "Invalid learning rate: -1"),
        (optim.Adam, dict(eps=-1), "Invalid epsilon value: -1"),
        (optim.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
        (optim.Adam, dict(betas=(-0.1, 0.999)), "Invalid beta parameter at index 0: -0.1"),
        (optim.Adam, dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
        (optim.Adam, dict(betas=(0.9,)), "Invalid betas"),
        (optim.Adam, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
        (optim.AdamW, dict(lr=-1), "Invalid learning rate: -1"),
        (optim.AdamW, dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
        (optim.AdamW, dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    ],
)
def test_invalid_hyperparameters(cls, kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls([param(np.zeros(2, np.float32))], **kw)


def test_invalid_group_options_are_checked_too():
    p, q = param(np.zeros(2, np.float32)), param(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adam([{"params": [p]}, {"params": [q], "lr": -1}])
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="Invalid momentum value"):
        opt.add_param_group({"params": [q], "momentum": -1})
    assert len(opt.param_groups) == 1


def test_duplicate_parameters_raise():
    p, q = param(np.zeros(2, np.float32)), param(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="duplicate parameters"):
        optim.SGD([p, q, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.Adam([{"params": [p]}, {"params": [q, p]}])
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})


def test_bad_params_argument():
    p = param(np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam({p})
    with pytest.raises(TypeError, match="can only optimize Tensors, but one of the params is numpy.ndarray"):
        optim.Adam([np.zeros(2)])
    with pytest.raises(TypeError, match="param_group must be a dict"):
        optim.Adam([p]).add_param_group([p])


def test_non_leaf_tensor_is_refused():
    p = param(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)


def test_repr_lists_groups():
    opt = optim.AdamW([param(np.zeros(2, np.float32))], lr=0.1)
    text = repr(opt)
    assert text.startswith("AdamW (") and "Parameter Group 0" in text and "weight_decay: 0.01" in text
    assert math.isclose(opt.defaults["weight_decay"], 0.01)
