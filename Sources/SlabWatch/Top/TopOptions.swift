public import SlabWatchCore

extension TopView.Options {
    /// `--delay`, `-d` as slabtop and top spell it.
    public static let delay = DurationOption(name: "delay", summary: "time between samples", default: Self().intervalSeconds,
                                             range: 0.1...Double.infinity, shortName: "d")
    /// `--sort`: the order below the findings (which always come first).
    public static let sort = ChoiceOption<TopView.SortKey>(name: "sort", valueName: "KEY", summary: "the order of the caches",
                                                           default: Self().sort)
}
