"""One error tree: every exception the package defines lives in `errors`, and the SDK's codes keep their values."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import langchain_ably_transport
from langchain_ably_transport import errors
from langchain_ably_transport.errors import AblyTransportError, ErrorCode


def _library_modules() -> list[str]:
    """Every module of the library; the dev server is a separate program with errors of its own."""
    found = pkgutil.walk_packages(langchain_ably_transport.__path__, "langchain_ably_transport.")
    return [info.name for info in found if ".devserver" not in info.name]


def test_every_exception_class_of_the_library_is_defined_in_errors() -> None:
    elsewhere = []
    for name in _library_modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            defined_here = inspect.isclass(value) and value.__module__ == name
            if defined_here and issubclass(value, BaseException) and name != errors.__name__:
                elsewhere.append(f"{name}.{attr}")
    assert elsewhere == []


def test_every_error_of_the_tree_is_public_and_an_ably_transport_error() -> None:
    defined = [value for value in vars(errors).values()
               if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == errors.__name__]
    assert len(defined) >= 18
    for error in defined:
        assert issubclass(error, AblyTransportError)
        assert getattr(langchain_ably_transport, error.__name__) is error


def test_the_ai_transport_codes_of_section_8_keep_the_sdk_values() -> None:
    section_8 = {
        "BAD_REQUEST": 40000, "INVALID_ARGUMENT": 40003, "MAX_MESSAGE_SIZE_EXCEEDED": 40009,
        "OPERATION_CANCELLED": 40033, "INSUFFICIENT_CAPABILITY": 40160, "INTERNAL_ERROR": 50000,
        "ENCODER_RECOVERY_FAILED": 104000, "SESSION_SUBSCRIPTION_ERROR": 104001, "CANCEL_LISTENER_ERROR": 104002,
        "RUN_LIFECYCLE_ERROR": 104003, "SESSION_CLOSED": 104004, "SESSION_SEND_FAILED": 104005,
        "CHANNEL_CONTINUITY_LOST": 104006, "CHANNEL_NOT_READY": 104007, "STREAM_ERROR": 104008,
        "INPUT_EVENT_NOT_FOUND": 104010, "HISTORY_FETCH_FAILED": 104011,
    }
    assert {name: ErrorCode[name].value for name in section_8} == section_8


def test_an_error_names_its_code_in_its_message() -> None:
    error = errors.ConnectionFailedError("refused", code=ErrorCode.TOKEN_REQUEST_FAILED)
    assert str(error) == "refused (Ably error 80019)"
    assert str(errors.ConfigurationError("no key")) == "no key"
