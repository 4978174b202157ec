"""The textbook example, grad(lambda x, y: x * y + sin(x), argnum=(0, 1))(2.0, 3.0):
the fixed cost of one gradient call."""
import fasttape as ft

from .common import median_time, textbook, textbook_float


class Textbook:
    def setup(self):
        self.grad = ft.grad(textbook, argnum=(0, 1))
        self.value_and_grad = ft.value_and_grad(textbook, argnum=(0, 1))
        self.tape = ft.Tape()
        self.x = ft.Variable(2.0, self.tape)
        self.y = ft.Variable(3.0, self.tape)
        self.out = textbook(self.x, self.y)
        self.out.backward()
        self.record_tape = ft.Tape()

    def time_f(self):
        textbook_float(2.0, 3.0)

    def time_record(self):
        t = self.record_tape
        t.reset()
        with t:
            textbook(ft.Variable(2.0), ft.Variable(3.0))

    def time_reverse(self):
        self.out.backward()

    def time_grad(self):
        self.grad(2.0, 3.0)

    def time_value_and_grad(self):
        self.value_and_grad(2.0, 3.0)

    def time_grad_make_and_call(self):
        ft.grad(textbook, argnum=(0, 1))(2.0, 3.0)

    def peakmem_grad(self):
        self.grad(2.0, 3.0)

    def track_grad_us(self):
        return median_time(lambda: self.grad(2.0, 3.0)) * 1e6
    track_grad_us.unit = "us"

    def track_grad_over_f(self):
        return (median_time(lambda: self.grad(2.0, 3.0))
                / median_time(lambda: textbook_float(2.0, 3.0)))
    track_grad_over_f.unit = "ratio"

    def track_bytes_per_node(self):
        return self.tape.bytes_per_node
    track_bytes_per_node.unit = "bytes"
