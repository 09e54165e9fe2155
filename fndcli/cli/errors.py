"""The CLI's one-line error messages, shared by the app (`cli.app`) and the config file's checks
(`cli.config`)."""


def clean(message):
    """One line, without the 'Value error, ' that Typer's coercion puts before a parser's message."""
    return " ".join(message.replace("Value error, ", "").split())


# pydantic's 'Input should be ...', which Typer's coercion passes on, reworded to name the value
_COERCION_MESSAGES = {
    "int_parsing": "{input!r} is not an integer",
    "float_parsing": "{input!r} is not a number",
    "greater_than_equal": "must be {ge} or more, got {input}",
    "less_than_equal": "must be {le} or less, got {input}",
}


def value_message(error):
    """A BadParameter's message; one that Typer's coercion (pydantic) raised names the value it rejected."""
    cause = error.__cause__
    details = cause.errors() if hasattr(cause, "errors") else []
    if details and details[0]["type"] in _COERCION_MESSAGES:
        return _COERCION_MESSAGES[details[0]["type"]].format(
            input=details[0]["input"], **details[0].get("ctx", {})
        )
    return error.message
