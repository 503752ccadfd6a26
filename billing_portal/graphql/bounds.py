"""Bounds on what one GraphQL request may ask, checked before any query runs: depth,
aliases (graphql-core validation rules, via strawberry's extensions) and page sizes (the
`first` argument, literal or variable), each refused with an error naming the bound."""

from graphql import (
    ArgumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    ValidationRule,
    VariableNode,
    visit,
)
from graphql.language import Visitor
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, SchemaExtension

MAX_DEPTH = 8
MAX_ALIASES = 15
MAX_PAGE = 100


def _depth(node, fragments: dict, seen: frozenset = frozenset()) -> int:
    """How deep fields nest under `node` (a field counts 1; fragments add nothing)."""
    selection_set = getattr(node, "selection_set", None)
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):  # introspection is not counted
                deepest = max(deepest, 1 + _depth(selection, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                deepest = max(deepest, _depth(fragments[name], fragments, seen | {name}))
    return deepest


class DepthBound(ValidationRule):
    def __init__(self, context):
        super().__init__(context)
        document = context.document
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        for operation in document.definitions:
            if isinstance(operation, OperationDefinitionNode):
                depth = _depth(operation, fragments)
                if depth > MAX_DEPTH:
                    context.report_error(
                        GraphQLError(
                            f"Fields nested {depth} deep: over the depth bound of {MAX_DEPTH}.",
                            [operation],
                            extensions={"code": "depth_exceeded", "bound": MAX_DEPTH},
                        )
                    )


def page_bound_errors(document, variables: dict | None) -> list[GraphQLError]:
    """Every `first` asked for outside 1..MAX_PAGE."""
    errors: list[GraphQLError] = []
    variables = variables or {}

    class Pages(Visitor):
        def enter_argument(self, node: ArgumentNode, *args):
            if node.name.value != "first":
                return
            value = node.value
            if isinstance(value, IntValueNode):
                asked = int(value.value)
            elif isinstance(value, VariableNode):
                asked = variables.get(value.name.value)
            else:
                return
            if isinstance(asked, int) and not 1 <= asked <= MAX_PAGE:
                errors.append(
                    GraphQLError(
                        f"`first: {asked}` is outside the page size bound of 1 to {MAX_PAGE}.",
                        [node],
                        extensions={"code": "page_size_exceeded", "bound": MAX_PAGE},
                    )
                )

    visit(document, Pages())
    return errors


class PageSizeBound(SchemaExtension):
    def on_execute(self):
        context = self.execution_context
        errors = page_bound_errors(context.graphql_document, context.variables)
        if errors:
            context.result = ExecutionResult(data=None, errors=errors)
        yield


def bounds() -> list:
    return [
        lambda: AddValidationRules([DepthBound]),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        PageSizeBound,
    ]
