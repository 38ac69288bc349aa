"""The conversions the gateway runs, passed in by the `watch` command (they are the pipeline's: the
gateway and the pipeline sit side by side and do not import each other)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Conversions:
    """Module-level functions (a converter process receives them by name):

    convert(path, options, report) -> ("ok", [Output]) | (verdict, [reasons])   an input on its own
    parse(path, options, report)   -> ("ok", Parsed)   | (verdict, [reasons])   a stream's input as records
    render(found, told, options, facts, starts) -> [Output]                     a stream's intervals
    events(found, told, options) -> DataFrame | None                            a stream input's state events
    """

    convert: Callable
    parse: Callable
    render: Callable
    events: Callable | None = None

    def function(self, job) -> Callable:
        return self.parse if job.stream else self.convert

    def run(self, job) -> tuple:
        """Run `job`'s conversion here, in this process."""
        return self.function(job)(str(job.work), job.options, job.report)

    def page(self, page) -> tuple:
        """The conversion of an archived input again, with its report page (`claims.Page`), here."""
        return (self.parse if page.stream else self.convert)(str(page.archived), page.options, page.report)
