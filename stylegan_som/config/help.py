"""A click command whose --help lists its options in titled sections."""

import click

class GroupedCommand(click.Command):
    """`sections`: [(title, [option name, ...])]; options in none of them are listed last, under 'Other'."""

    def __init__(self, *args, sections=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.sections = list(sections)

    def format_options(self, ctx, formatter):
        records = {param.name: param.get_help_record(ctx) for param in self.get_params(ctx)}
        listed = set()
        for title, names in self.sections + [('Other', [name for name in records])]:
            rows = [records[name] for name in names if name not in listed and records.get(name)]
            listed.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
