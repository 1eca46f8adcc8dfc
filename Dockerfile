# Colorization workbench: the dashboard (default) or the HTTP API, on the CPU.
#
#   docker build -t colorization-workbench .
#   docker run --rm -p 8501:8501 colorization-workbench                                   # dashboard on :8501
#   docker run --rm -p 8000:8000 colorization-workbench colorize-serve --host 0.0.0.0     # API on :8000
#
# GPU variant (NVIDIA Container Toolkit on the host): CUDA wheels of PyTorch and TensorFlow with CUDA,
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 --build-arg TF_GPU=1 -t colorization-workbench:gpu .
#   docker run --rm --gpus all -p 8501:8501 colorization-workbench:gpu
# Studies that need the admin pages: add -e COLORIZE_STUDY_ADMIN_TOKEN=...; keep votes with
# -v workbench-results:/app/results (or COLORIZE_STUDY_DB=postgresql+psycopg://...).
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TF_GPU=0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# PyTorch first, from the chosen index (the CPU wheels: a plain PyPI install on x86_64 brings CUDA, GBs)
RUN pip install --index-url "${TORCH_INDEX}" "torch>=2.4" "torchvision>=0.19"
COPY requirements.txt requirements-gpu.txt ./
RUN pip install -r requirements.txt \
    && if [ "${TF_GPU}" = "1" ]; then pip uninstall -y tensorflow-cpu && pip install -r requirements-gpu.txt; fi

# The project (shipped models in results/checkpoints included), installed editable so the
# console scripts run this folder - the models are found where the code is.
COPY . .
RUN pip install --no-deps --no-build-isolation -e . \
    && useradd --create-home --uid 10001 workbench \
    && mkdir -p results/comparisons results/studies results/metrics \
    && chown -R workbench:workbench /app/results

USER workbench
EXPOSE 8501 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-m", "experiments.healthcheck"]
CMD ["colorize-dashboard", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
