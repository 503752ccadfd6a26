"""The one body the service API reads: JSON, nested no deeper than any request of ours."""

from rest_framework import exceptions, parsers

# A usage batch is the deepest body we accept: a list of objects of plain values (2).
MAX_DEPTH = 8


class NestingTooDeep(exceptions.ParseError):
    default_code = "nesting_too_deep"


def _depth(data) -> int:
    """How deeply lists and objects nest in `data`, walked without recursion."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return deepest


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        message = f"The JSON body nests deeper than {MAX_DEPTH} levels."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the decoder's own stack gave out first
            raise NestingTooDeep(message) from None
        if _depth(data) > MAX_DEPTH:
            raise NestingTooDeep(message)
        return data
