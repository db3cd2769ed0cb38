"""The reading order of the gallery: networks first, from the convergence
result to model selection, then spikes. Examples not listed come last, by
file name."""

ORDER = [
    "plot_teacher_student.py",
    "plot_flows.py",
    "plot_regularization_path.py",
    "plot_model_selection.py",
    "plot_spikes_1d.py",
    "plot_spikes_2d.py",
]


class ExampleOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in ORDER:
            return (ORDER.index(filename), "")
        return (len(ORDER), filename)

    def __repr__(self):
        return f"<{type(self).__name__}>"
