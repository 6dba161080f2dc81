"""The classes nnsweep derives from Keras Tuner's: its gRPC client, bounded and with a clear
error, and an oracle that hands out a grid's configurations in order.

This module imports Keras Tuner at its top, so it is itself imported lazily, after
``strategies.tuner._kt()`` has imported Keras quietly; nothing else defines classes at run
time to keep Keras out of the command line's start.
"""

from __future__ import annotations

from typing import Any

import grpc
import keras_tuner as kt

from nnsweep import _compat
from nnsweep.errors import ChiefError

_protos = _compat.protos()
_Trial = _compat.trial_class()
_HyperParameters = _compat.hyperparameters_class()


# Keras Tuner's class, found at run time (see _compat): no static type to check against.
class Client(_compat.oracle_client()):  # type: ignore[misc]
    """Keras Tuner's client, with every call bounded and a clear error on failure."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(oracle=None)
        self.address = f"{host}:{port}"
        self.timeout = timeout

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request, wait_for_ready=True, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise ChiefError(
                f"lost the chief at {self.address} ({exc.code().name}): it finished, "
                "stopped or cannot be reached"
            ) from None

    def get_space(self) -> Any:
        response = self._call("GetSpace", _protos.get_service().GetSpaceRequest())
        return _HyperParameters.from_proto(response.hyperparameters)

    def create_trial(self, tuner_id: str) -> Any:
        request = _protos.get_service().CreateTrialRequest(tuner_id=tuner_id)
        return _Trial.from_proto(self._call("CreateTrial", request).trial)

    def update_trial(self, trial_id: str, metrics: dict, step: int = 0) -> Any:
        request = _protos.get_service().UpdateTrialRequest(
            trial_id=trial_id, metrics=metrics, step=step
        )
        return _Trial.from_proto(self._call("UpdateTrial", request).trial)

    def end_trial(self, trial: Any) -> None:
        self._call("EndTrial", _protos.get_service().EndTrialRequest(trial=trial.to_proto()))

    def get_trial(self, trial_id: str) -> Any:
        request = _protos.get_service().GetTrialRequest(trial_id=trial_id)
        return _Trial.from_proto(self._call("GetTrial", request).trial)


class GridOracle(kt.Oracle):
    """Hands out the grid's configurations in order, by index (hyperparameter ``key``)."""

    def __init__(self, n_configs: int, key: str, **kwargs: Any) -> None:
        super().__init__(max_trials=n_configs, **kwargs)
        self.n_configs, self.key = n_configs, key

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        index = len(self.trials)
        if index >= self.n_configs:
            return {"status": "STOPPED"}
        return {"status": "RUNNING", "values": {self.key: index}}


def grid_oracle(n_configs: int, key: str, common: dict[str, Any]) -> GridOracle:
    """A grid's oracle: one integer hyperparameter ``key``, the configuration's index."""
    hp = kt.HyperParameters()
    hp.Int(key, 0, max(n_configs - 1, 0))
    return GridOracle(n_configs, key, **{**common, "hyperparameters": hp})
