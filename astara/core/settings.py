"""The tunables the state machine needs, as plain values (built from oslo.config outside), and
the error every layer raises for an unusable option."""

from __future__ import annotations

from dataclasses import dataclass

from astara.core.retry import Backoff


class ConfigError(Exception):
    """The configuration is unusable; the message is one line naming the file and option."""


@dataclass(frozen=True, slots=True)
class MachineSettings:
    """Per-resource state machine settings; one shared instance per worker."""

    boot_timeout: float = 600.0  # seconds from boot to a live appliance API
    reboot_error_threshold: int = 5  # failed boots in a row before ERROR
    error_state_cooldown: float = 30.0  # seconds in ERROR before ClearError may retry
    max_retries: int = 3  # failed configuration pushes in a row (retried) before a restart
    transition_history: int = 50  # transitions kept per resource
    mgt_service_port: int = 5000  # the appliance API port
    boot_check_interval: float = 1.0  # seconds between aliveness checks while booting
    hotplug_timeout: float = 60.0  # seconds for an appliance to see a hot-plugged NIC
    drift_check_period: float = 300.0  # seconds between drift checks of a configured one; 0: off
    requeue_base: float = 1.0  # seconds before retrying a failed step the first time
    requeue_cap: float = 30.0  # the longest wait between retries of a failing resource

    def __post_init__(self) -> None:
        if not 0 < self.requeue_base <= self.requeue_cap:
            raise ConfigError(
                f"requeue_backoff_cap ({self.requeue_cap:g}) must be at least "
                f"requeue_backoff_base ({self.requeue_base:g}), which must be positive"
            )

    @property
    def requeue_backoff(self) -> Backoff:
        """The delays between retries of a resource whose steps keep failing."""
        return Backoff(self.requeue_base, self.requeue_cap)
