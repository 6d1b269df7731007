"""Confidence scoring and the trading-mode controller with hysteresis."""

from __future__ import annotations

import pytest

from epochbot.engine.confidence import ConfidenceConfig, ConfidenceInputs, FactorConfig, evaluate
from epochbot.engine.modes import ModeConfig, ModeController
from epochbot.model.modes import Mode, parse_mode

MS = 1_000_000


def test_severity_is_zero_at_or_below_warn():
    assert FactorConfig(warn=10, critical=20).severity(10) == 0.0


def test_severity_ramps_linearly_between_warn_and_critical():
    assert FactorConfig(warn=10, critical=20).severity(15) == pytest.approx(0.5)


def test_severity_is_one_at_or_above_critical():
    assert FactorConfig(warn=10, critical=20).severity(25) == 1.0


def test_healthy_inputs_give_full_confidence_without_reasons():
    conf = evaluate(ConfidenceInputs(), ConfidenceConfig())

    assert (conf.score, conf.reasons) == (1.0, ())


def test_confidence_is_the_product_of_factor_penalties():
    config = ConfidenceConfig(
        {"queue_delay_ms": FactorConfig(0, 100, 0.5), "market_silence_ms": FactorConfig(0, 100, 1.0)}
    )

    conf = evaluate(ConfidenceInputs(queue_delay_ms=100, market_silence_ms=50), config)

    assert conf.score == pytest.approx((1 - 0.5) * (1 - 0.5))


def test_one_critical_factor_of_weight_one_drives_confidence_to_zero():
    conf = evaluate(ConfidenceInputs(market_silence_ms=5000, queue_delay_ms=1), ConfidenceConfig())

    assert conf.score == 0.0


def test_reasons_are_sorted_by_penalty_and_carry_value_and_thresholds():
    conf = evaluate(ConfidenceInputs(queue_delay_ms=110, market_silence_ms=1000), ConfidenceConfig())

    assert conf.reason_names == ("market_silence_ms", "queue_delay_ms")
    silence = conf.reasons[0]
    assert (silence.value, silence.warn, silence.critical, silence.penalty) == (1000, 500, 1500, 0.5)
    assert "market_silence_ms=1000 (warn 500, critical 1500)" == silence.describe()


def controller(hold_ms: float = 2000) -> ModeController:
    return ModeController(ModeConfig(recovery_hold_ms=hold_ms), now_ns=0)


def test_mode_starts_halted():
    assert controller().effective is Mode.HALTED


def test_mode_degrades_immediately_when_confidence_falls():
    modes = controller()
    modes.on_confidence(1.0, "", 0)
    modes.on_confidence(1.0, "", 3000 * MS)
    assert modes.effective is Mode.NORMAL

    change = modes.on_confidence(0.6, "queue", 3001 * MS)

    assert modes.effective is Mode.REDUCE_ONLY
    assert change is not None and change.previous is Mode.NORMAL and change.source == "confidence"


def test_mode_relaxes_only_after_the_recovery_hold():
    modes = controller(hold_ms=2000)

    assert modes.on_confidence(1.0, "", 0) is None
    assert modes.on_confidence(1.0, "", 1999 * MS) is None
    assert modes.effective is Mode.HALTED
    change = modes.on_confidence(1.0, "", 2000 * MS)

    assert modes.effective is Mode.NORMAL
    assert "held 2s" in change.cause


def test_mode_relaxes_only_as_far_as_the_worst_confidence_during_the_hold():
    modes = controller(hold_ms=2000)
    modes.on_confidence(0.9, "", 0)
    modes.on_confidence(0.6, "", 1000 * MS)

    modes.on_confidence(0.9, "", 2000 * MS)

    assert modes.effective is Mode.REDUCE_ONLY


def test_flapping_confidence_never_relaxes_the_mode():
    modes = controller(hold_ms=2000)

    for i in range(100):
        modes.on_confidence(0.95 if i % 2 else 0.1, "flap", i * 500 * MS)

    assert modes.effective is Mode.HALTED


def test_operator_mode_is_a_floor_the_automatic_mode_cannot_loosen():
    modes = controller(hold_ms=0)
    modes.on_confidence(1.0, "", 0)
    modes.on_confidence(1.0, "", 1)
    assert modes.effective is Mode.NORMAL

    modes.set_operator(Mode.CANCEL_MAKERS, 2)
    modes.on_confidence(1.0, "", 3)

    assert modes.effective is Mode.CANCEL_MAKERS


def test_automatic_mode_can_be_stricter_than_the_operator_floor():
    modes = controller()
    modes.set_operator(Mode.REDUCE_ONLY, 0)

    modes.on_confidence(0.1, "dead", 1)

    assert modes.effective is Mode.HALTED


def test_operator_normal_removes_the_floor():
    modes = controller(hold_ms=0)
    modes.set_operator(Mode.HALTED, 0)
    modes.on_confidence(1.0, "", 1)
    modes.on_confidence(1.0, "", 2)

    modes.set_operator(Mode.NORMAL, 3)

    assert modes.effective is Mode.NORMAL


def test_fatal_latch_keeps_the_mode_halted_whatever_confidence_and_operator_say():
    modes = controller(hold_ms=0)
    change = modes.latch_fatal(0, "crossed")

    modes.on_confidence(1.0, "", 1)
    modes.on_confidence(1.0, "", 2)
    modes.set_operator(Mode.NORMAL, 3)

    assert modes.effective is Mode.HALTED
    assert change is None or change.source == "fatal"


@pytest.mark.parametrize(
    "text, mode",
    [
        ("normal", Mode.NORMAL),
        ("reduce_only", Mode.REDUCE_ONLY),
        ("Reduce-Only", Mode.REDUCE_ONLY),
        ("reduce", Mode.REDUCE_ONLY),
        ("cancel", Mode.CANCEL_MAKERS),
        ("CANCEL_MAKERS", Mode.CANCEL_MAKERS),
        ("halt", Mode.HALTED),
        (" halted ", Mode.HALTED),
    ],
)
def test_parse_mode_accepts_aliases(text, mode):
    assert parse_mode(text) is mode


def test_parse_mode_error_names_the_choices():
    with pytest.raises(
        ValueError, match="unknown mode 'fast'; choose one of: normal, reduce-only, cancel-makers, halted"
    ):
        parse_mode("fast")
