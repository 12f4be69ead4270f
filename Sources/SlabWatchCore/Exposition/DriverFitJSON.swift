extension JSONWriter {
    /// One driver's fit as a JSON object, the same in `/snapshot`'s
    /// `other_drivers` and in a measurement's `fits`: `driver`, `inode_cache`,
    /// `bytes_per_unit`, `r_squared`, `driver_change`, then `flagged` when
    /// `includingFlagged` (a finding's other drivers all passed, so the
    /// snapshot leaves it out; a measurement lists fits that did not).
    mutating func driverFit(_ fit: Finding.DriverFit, includingFlagged: Bool) {
        beginObject()
        key("driver"); string(fit.driver.rawValue)
        key("inode_cache"); string(fit.inodeCache)
        key("bytes_per_unit"); number(fit.bytesPerUnit)
        key("r_squared"); number(fit.rSquared)
        key("driver_change"); number(fit.driverChange)
        if includingFlagged { key("flagged"); bool(fit.flagged) }
        endObject()
    }
}
