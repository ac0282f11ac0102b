"""The corpus stage's executors: datatrove's local, Slurm or Ray executor per stage, and the Slurm dry run's sbatch
scripts (written, not submitted)."""


def make_executor(args, name, pipeline, depends, tasks):
    """datatrove's LocalPipelineExecutor, SlurmPipelineExecutor or RayPipelineExecutor, chosen by `executor`."""
    options = dict(args.executor_options or {})
    common = dict(pipeline=pipeline, tasks=tasks, depends=depends, logging_dir=f"{args.output_dir.rstrip('/')}/logs/{name}")
    if args.executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        options.setdefault("time", "24:00:00")
        options.setdefault("partition", "cpu")
        return SlurmPipelineExecutor(**common, job_name=f"corpus_{name}", **options)
    if args.executor == "ray":
        from datatrove.executor import RayPipelineExecutor

        return RayPipelineExecutor(**common, workers=args.workers, **options)
    from datatrove.executor import LocalPipelineExecutor

    return LocalPipelineExecutor(**common, workers=args.workers, **options)


def write_slurm_scripts(stages):
    """Dry run for Slurm: write each stage's sbatch script (as datatrove would submit it) without submitting."""
    paths = []
    for stage in stages:
        script = stage.get_launch_file_contents(
            stage.get_sbatch_args(min(stage.tasks, stage.max_array_size)),
            f"launch_pickled_pipeline {stage.logging_dir.resolve_paths('executor.pik')}")
        with stage.logging_dir.open("launch_script.slurm", "w") as f:
            f.write(script)
        paths.append(stage.logging_dir.resolve_paths("launch_script.slurm"))
    return paths
