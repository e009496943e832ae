"""The closed taxonomy every classification must fit.

`error_type` is never chosen freely: it is derived from the owner by `error_type_for`,
so the same owner always means the same terminal state.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ErrorType(str, Enum):
    USER = "user"
    SYSTEM = "system"


class Owner(str, Enum):
    LAB = "lab"
    BIOINFORMATICIAN = "bioinformatician"
    PLATFORM = "platform"
    AMBIGUOUS = "ambiguous"


class ClassifiedBy(str, Enum):
    LOOKUP = "lookup"
    RULES = "rules"
    LLM = "llm"


def error_type_for(owner: Owner) -> ErrorType:
    """The one rule: platform problems are system errors, everything else is a user error.

    `ambiguous` counts as user: a person must look before we spend retries on infrastructure.
    """
    return ErrorType.SYSTEM if owner is Owner.PLATFORM else ErrorType.USER


class Classification(BaseModel):
    """Who must act on a failure, what went wrong and what to do."""

    model_config = ConfigDict(frozen=True)

    owner: Owner
    category: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    summary: str = Field(min_length=1, max_length=500)
    action: str = Field(min_length=1, max_length=500)
    classified_by: ClassifiedBy
    rule: str = Field(min_length=1, max_length=100)

    @property
    def error_type(self) -> ErrorType:
        return error_type_for(self.owner)

    @field_validator("summary", "action")
    @classmethod
    def _single_line(cls, v: str) -> str:
        return " ".join(v.split())

    def as_record(self) -> dict[str, str]:
        """Flat, JSON-ready form used by the ledger, the CLI and Firestore."""
        return {
            "error_type": self.error_type.value,
            "owner": self.owner.value,
            "category": self.category,
            "summary": self.summary,
            "action": self.action,
            "classified_by": self.classified_by.value,
            "rule": self.rule,
        }
