"""Beam wiring of the build (`build`, `passes`, `linededup`, `dedup`, `write`), the LM step (`lm`) and the
shards job; importing the package registers Beam's filesystems for gs:// paths (`filesystems`)."""

from pipeline.filesystems import register

register()
