"""RiskMonitor: candles and positions in (NATS), crash detection and the liquidation guard out.

The rules are pure (:mod:`opensqt.risk.crash`, :mod:`opensqt.risk.liquidation`); this class
feeds them and carries out their decisions through the :class:`TradingStateController`. A
crash moves the state to REDUCING (or HALTED, as configured) and publishes an alert; it never
softens a stricter state, and never takes over an operator's (a conditional write in Redis). Recovery is
published as an alert and, by default, changes nothing: only an explicit Resume lifts a crash
(on real data the market "recovers" within minutes of a crash candle and crashes again). With
``auto_recover`` it returns to ACTIVE, and only from a state the crash detector itself set.
A liquidation decision is published as an alert; the strategy
service, which owns the positions' agents, carries out the emergency exit (each market maker
and arbitrage bot guards its own positions with the same rule).
"""

from __future__ import annotations

from dataclasses import asdict

from opensqt.model import AlertKind, Candle, PositionUpdate, RiskAlert, TradingStateKind
from opensqt.risk.crash import CrashDetector
from opensqt.risk.liquidation import LiquidationGuard
from opensqt.risk.service import TradingStateController
from opensqt.telemetry import ServiceMetrics, get_logger
from opensqt.transport.bus import EventContext

__all__ = ["CRASH_IDENTITY", "RiskMonitor"]

log = get_logger(__name__)

#: ``set_by`` of states the crash detector sets (recovery may lift only those).
CRASH_IDENTITY = "risk:crash-detector"


class RiskMonitor:
    """Feeds the detectors and applies their decisions."""

    def __init__(
        self,
        controller: TradingStateController,
        detector: CrashDetector,
        guard: LiquidationGuard,
        *,
        auto_recover: bool = False,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._controller = controller
        self._metrics = metrics
        self.auto_recover = auto_recover
        self.detector = detector
        self.guard = guard
        self.crash_triggers = 0
        self.recoveries = 0
        self.liquidation_alerts = 0
        self.agent_alerts = 0

    async def on_candle(self, candle: Candle, ctx: EventContext) -> None:
        decision = self.detector.on_candle(candle)
        if self._metrics is not None:
            for outcome, count in asdict(self.detector.stats).items():
                self._metrics.crash_candles.labels(outcome).set(count)
        if decision is None:
            return
        await self._controller.record_alert(decision.alert)
        if decision.kind is AlertKind.CRASH:
            self.crash_triggers += 1
            # only ever stricter, and never over another's state: a crash must not turn an
            # operator's HALTED into REDUCING, nor take over an operator's REDUCING (recovery
            # would then lift it); the alert still goes out
            await self._controller.change(
                decision.trading_state,
                reason=decision.alert.message,
                set_by=CRASH_IDENTITY,
                action="crash",
                guard="escalate",
            )
            return
        current = await self._controller.current()
        if not self.auto_recover:
            log.info(
                "recovery_reported", state=current.state.value, note="an explicit Resume lifts the crash"
            )
        elif current.set_by == CRASH_IDENTITY and current.state is not TradingStateKind.ACTIVE:
            # only the state just read: an operator's Halt since then is not lifted
            held, _ = await self._controller.change(
                TradingStateKind.ACTIVE,
                reason=decision.alert.message,
                set_by=CRASH_IDENTITY,
                action="recovery",
                guard="version",
                expected_version=current.version,
            )
            if held.version == current.version + 1 and held.set_by == CRASH_IDENTITY:
                self.recoveries += 1
        else:
            log.info("recovery_not_applied", state=current.state.value, set_by=current.set_by)

    async def on_agent_alert(self, alert: RiskAlert, ctx: EventContext) -> None:
        """An agent's own alert: kept and published with risk's (ListAlerts, RISK_ALERT)."""
        self.agent_alerts += 1
        log.warning("agent_alert", alert_id=alert.alert_id, kind=alert.kind.value, message=alert.message)
        await self._controller.record_alert(alert)

    async def on_position(self, update: PositionUpdate, ctx: EventContext) -> None:
        decision = self.guard.on_position_update(update.position)
        if decision is None:
            return
        self.liquidation_alerts += 1
        await self._controller.record_alert(decision.alert)
        log.error(
            "liquidation_guard_tripped",
            symbol=update.position.symbol,
            distance=str(decision.distance),
            exits=[f"{e.venue}:{e.symbol}" for e in decision.exits],
        )
