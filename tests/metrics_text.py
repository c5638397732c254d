"""Read a Prometheus text scrape in tests: sum the samples whose labels include the given ones."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    text: str

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        found = []
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    found.append((dict(sample.labels), float(sample.value)))
        return found

    def value(self, name: str, **labels: str) -> float:
        """The sum over matching samples; KeyError when there is none."""
        found = self.samples(name, **labels)
        if not found:
            raise KeyError(f"no sample {name}{labels}")
        return sum(v for _, v in found)

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """Samples of `name` summed by the given labels, zeros left out."""
        out: dict[tuple[str, ...], float] = {}
        for labels, v in self.samples(name):
            key = tuple(labels.get(k, "") for k in keys)
            out[key] = out.get(key, 0.0) + v
        return {k: v for k, v in out.items() if v}
