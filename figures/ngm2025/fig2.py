"""Fig. 2: a gain boost approximates a two-timescale optimizer (the stability-gap paper's proof of principle).

A 1-D linear model y = W_eff·x with constant input x learns a target T(t) under L = ½(T − y)²: T₁, then T₂ for a
short window, then T₁ again (the authors' toy schedule). Three learners: slow weights only (plain gradient
descent), fast + slow weights (w_fast decays back to 0, w_slow does not; y = w_fast + w_slow), and gain-modulated
weights (W_eff = g·w, w updated by gradient descent on w, so ∂L/∂w = g·∂L/∂W_eff, and g ← γg + (1 − γ)g₀ +
η·|w·e·x| with e = T − y: a burst of gain when the error jumps, as in the authors' toy code). The gain-modulated
learner starts on target, w = g = 1, as in the authors' toy script (the others start at 0, converged long before
the switch). A: its W_eff as slow part g₀·w plus fast part (g − g₀)·w, beside the fast + slow learner's weights.
B, left: the outputs. B, right: the loss over W_eff at the peak gain, curvature λ = x² (plain) and λ/g² (gain-
modulated, in the coordinates it steps); dots: each learner's state then, arrows: its next step.

A deterministic simulation (no data, no seeds): its constants are the authors' toy settings.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

EXPERIMENTS: list[str] = []
PAPER_EXPERIMENTS = ["ngm_split_mnist"]   # shown with the stability-gap paper's figures
TITLE = "Fig. 2: gain modulation as a two-timescale optimizer (1-D toy)"

STEPS, SWITCH, BACK, X = 300, 144, 154, 1.0     # T₂ from step SWITCH until step BACK, T₁ before and after
TARGETS = (1.0, -1.0)
SLOW_LR, FAST_LR, FAST_DECAY = 0.1, 0.2, 0.9
GAIN_LR, G0, GAMMA, ETA = 0.1, 1.0, 0.9, 0.7
COLORS = {"slow": "indigo", "fast_slow": "royalblue", "gain": "darkorange"}
LABELS = {"slow": "slow weight", "fast_slow": "fast + slow weights", "gain": "gain-modulated weight"}


def simulate(steps: int = STEPS, switch: int = SWITCH, back: int = BACK) -> dict[str, np.ndarray]:
    """Outputs of the three learners, the target, the gain, and each learner's step in W_eff, per time step."""
    t = np.arange(steps)
    target = np.where((t >= switch) & (t < back), TARGETS[1], TARGETS[0])
    w_slow_only = w_fast = w_slow = 0.0
    w, g = TARGETS[0] / (G0 * X), G0     # on target from the start (the authors' toy: w = g = 1)
    out = {key: np.zeros(steps) for key in ("slow", "fast_slow", "gain", "g", "step_slow", "step_fast_slow",
                                            "step_gain", "w", "w_fast", "w_slow")}
    for t in range(steps):
        # slow weights only
        y = w_slow_only * X
        out["slow"][t], step = y, SLOW_LR * (target[t] - y) * X
        out["step_slow"][t], w_slow_only = step, w_slow_only + step
        # fast + slow weights
        y = (w_fast + w_slow) * X
        error = target[t] - y
        out["fast_slow"][t], out["w_fast"][t], out["w_slow"][t] = y, w_fast, w_slow
        new_fast, new_slow = FAST_DECAY * w_fast + FAST_LR * error * X, w_slow + SLOW_LR * error * X
        out["step_fast_slow"][t] = (new_fast + new_slow) - (w_fast + w_slow)
        w_fast, w_slow = new_fast, new_slow
        # gain-modulated: W_eff = g·w; gradient step on w
        y = g * w * X
        error = target[t] - y
        out["gain"][t], out["g"][t], out["w"][t] = y, g, w
        new_w = w + GAIN_LR * g * error * X
        new_g = GAMMA * g + (1 - GAMMA) * G0 + ETA * abs(new_w * error * X)
        out["step_gain"][t] = new_g * new_w - g * w
        w, g = new_w, new_g
    out["target"] = target
    return out


def draw(aggregates: dict[str, pd.DataFrame], scale: str) -> Figure:
    sim = simulate()
    peak = int(np.argmax(sim["g"][:BACK]))     # the burst after the switch to T₂
    fig = Figure(figsize=(17, 4.2))
    panel_a, left, right = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1.3, 1]})
    t = np.arange(STEPS)
    draw_decomposition(panel_a, sim, t, peak)
    left.axvspan(SWITCH, BACK, color="0.92", linewidth=0)
    for key in ("slow", "fast_slow", "gain"):
        left.plot(t, sim[key], color=COLORS[key], label=LABELS[key], linewidth=1.6)
    left.plot(t, sim["target"], ".", color="k", markersize=2, label="target")
    left.axvline(peak, color="0.3", linestyle="--", linewidth=1)
    twin = left.twinx()
    twin.plot(t, sim["g"], color="darkorange", alpha=0.35, linewidth=1)
    twin.set_ylabel("gain g", color="darkorange")
    left.set_xlim(100, 200)
    left.set_xlabel("time step")
    left.set_ylabel("output y")
    left.set_title("B, left: outputs (T₁ unshaded, T₂ shaded; dashed: peak gain)", loc="left", fontsize="medium")
    left.legend(fontsize="small", loc="lower left")

    g_peak, t2 = sim["g"][peak], TARGETS[1]
    w_eff = np.linspace(t2 - 2.5, t2 + 2.5, 200)
    right.plot(w_eff, 0.5 * X**2 * (w_eff - t2) ** 2, color="0.4", label="λ = x² (plain)")
    right.plot(w_eff, 0.5 * X**2 / g_peak**2 * (w_eff - t2) ** 2, color="darkorange",
               label=f"λ/g² (g = {g_peak:.2f} at its peak)")
    for key, curvature in (("slow", 1.0), ("fast_slow", 1.0), ("gain", 1 / g_peak**2)):
        here = sim[key][peak]
        loss = 0.5 * X**2 * curvature * (here - t2) ** 2
        right.plot(here, loss, "o", color=COLORS[key])
        right.annotate("", xy=(here + sim[f"step_{key}"][peak], loss), xytext=(here, loss),
                       arrowprops=dict(arrowstyle="->", color=COLORS[key]))
    right.set_xlabel("effective weight W_eff")
    right.set_ylabel("loss toward T₂")
    right.set_title("B, right: loss landscape at the peak gain", loc="left", fontsize="medium")
    right.legend(fontsize="small")
    fig.suptitle(TITLE)
    return fig


def draw_decomposition(ax, sim: dict[str, np.ndarray], t: np.ndarray, peak: int) -> None:
    """Panel A: W_eff = g·w of the gain-modulated learner as g₀·w (slow) + (g − g₀)·w (fast), solid, and the fast +
    slow learner's w_slow and w_fast, dashed."""
    ax.axvspan(SWITCH, BACK, color="0.92", linewidth=0)
    ax.plot(t, sim["g"] * sim["w"], color=COLORS["gain"], linewidth=1.6, label="W_eff = g·w")
    ax.plot(t, G0 * sim["w"], color="saddlebrown", linewidth=1.2, label="slow part g₀·w")
    ax.plot(t, (sim["g"] - G0) * sim["w"], color="gold", linewidth=1.2, label="fast part (g − g₀)·w")
    ax.plot(t, sim["w_slow"], color=COLORS["fast_slow"], linestyle="--", linewidth=1, label="fast + slow: w_slow")
    ax.plot(t, sim["w_fast"], color="lightskyblue", linestyle="--", linewidth=1, label="fast + slow: w_fast")
    ax.axvline(peak, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlim(100, 200)
    ax.set_xlabel("time step")
    ax.set_ylabel("weight")
    ax.set_title("A: fast and slow parts of the effective weight", loc="left", fontsize="medium")
    ax.legend(fontsize="small", loc="lower left")


def caption(aggregates: dict[str, pd.DataFrame], scale: str) -> str:
    sim = simulate()
    peak = int(np.argmax(sim["g"][:BACK]))
    return (f"{__doc__.split(chr(10) + chr(10))[1]} x = {X}; target {TARGETS[0]:g}, {TARGETS[1]:g} in steps "
            f"{SWITCH}-{BACK - 1}, then {TARGETS[0]:g}; rates: slow {SLOW_LR}, fast {FAST_LR} (decay {FAST_DECAY}), "
            f"gain learner {GAIN_LR}, g₀ = {G0}, γ = {GAMMA}, η = {ETA}. Peak gain {sim['g'][peak]:.2f} at step "
            f"{peak}. Scale: {scale} (the same at every scale).")
