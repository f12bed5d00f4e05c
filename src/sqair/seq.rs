//! One SQAIR time step and the unroll over a sequence (`seq.py`, `SQAIRTimestep`): propagate
//! the objects of t − 1, discover new ones, keep the present ones first (at most K), decode, and
//! weigh the particle: log w_t = log p(x_t | z_t) − [log q(z_t) − log p(z_t)].
use super::dist::normal_log_prob;
use super::model::{PriorStats, Slot, SlotNoise, SlotOut, SqairNet, prop_log_probs};
use crate::train::Shard;
use burn::tensor::{Device, Tensor};

/// What one frame carries to the next: per slot [P, K, ·] latents, states and ids.
#[derive(Debug, Clone)]
pub struct Carry {
    pub what: Tensor<3>,
    pub where_: Tensor<3>,
    pub pres: Tensor<2>,
    pub logit: Tensor<2>,
    pub temporal: Tensor<3>,
    pub prior: Tensor<3>,
    /// Object ids, −1 where absent [P, K].
    pub ids: Tensor<2>,
    /// The highest id used so far [P, 1].
    pub last_id: Tensor<2>,
}

/// One frame's terms per row [P, 1], its mean canvas [P, H, W] and its merged latents.
#[derive(Debug, Clone)]
pub struct Frame {
    pub log_weight: Tensor<2>,
    pub data_ll: Tensor<2>,
    pub log_q: Tensor<2>,
    pub log_p: Tensor<2>,
    /// log q of the discrete variables (propagation's presences, discovery's count).
    pub discrete_log_q: Tensor<2>,
    pub steps: Tensor<2>,
    pub prop_steps: Tensor<2>,
    pub disc_steps: Tensor<2>,
    pub canvas: Tensor<3>,
}

/// Slot k of [P, K, D] as [P, D].
fn slot3(x: &Tensor<3>, k: usize) -> Tensor<2> {
    let [p, _, d] = x.dims();
    x.clone().slice([0..p, k..k + 1, 0..d]).reshape([p, d])
}

/// Column k of [P, K] as [P, 1].
fn col(x: &Tensor<2>, k: usize) -> Tensor<2> {
    let p = x.dims()[0];
    x.clone().slice([0..p, k..k + 1])
}

/// [P, D] slots → [P, K, D].
fn stack(slots: Vec<Tensor<2>>) -> Tensor<3> {
    let [p, d] = slots[0].dims();
    Tensor::cat(slots.into_iter().map(|s| s.reshape([p, 1, d])).collect(), 1)
}

/// Rows of [P, K, D] as [P·K, D].
fn rows(x: Tensor<3>) -> Tensor<2> {
    let [p, k, d] = x.dims();
    x.reshape([p * k, d])
}

impl SqairNet {
    /// The state before the first frame: nothing present, learned initial GRU states.
    pub fn initial_carry(&self, p: usize, device: &Device) -> Carry {
        let s = &self.shape;
        let k = s.steps;
        let tile = |h: Tensor<2>| h.reshape([1, 1, s.hidden]).expand([p, k, s.hidden]);
        Carry {
            what: Tensor::zeros([p, k, s.n_what], device),
            where_: Tensor::zeros([p, k, 4], device),
            pres: Tensor::zeros([p, k], device),
            logit: Tensor::zeros([p, k], device),
            temporal: tile(self.propagation.temporal.initial(1)),
            prior: tile(self.prop_prior.rnn.initial(1)),
            ids: Tensor::<2>::ones([p, k], device).neg(),
            last_id: Tensor::<2>::ones([p, 1], device).neg(),
        }
    }

    /// One frame `img` [P, H, W] at time `t`; `noise` holds N(0, 1) draws [P, 2K, 4 + n_what]
    /// and uniforms [P, 2K, 1] for the 2K slot steps (propagation first).
    pub fn frame(&self, img: &Tensor<3>, c: &Carry, t: usize, noise: (&Tensor<3>, &Tensor<3>)) -> (Frame, Carry) {
        let s = &self.shape;
        let (k, w) = (s.steps, s.n_what);
        let [p, _, _] = img.dims();
        let device = img.device();
        let slot_noise = |i: usize| {
            let n = slot3(noise.0, i);
            SlotNoise {
                where_: n.clone().slice([0..p, 0..4]),
                what: n.slice([0..p, 4..4 + w]),
                pres: slot3(noise.1, i),
            }
        };
        let tm1 = |j: usize| Slot {
            what: slot3(&c.what, j),
            where_: slot3(&c.where_, j),
            pres: col(&c.pres, j),
            logit: col(&c.logit, j),
        };
        let zeros = |d: usize| Tensor::<2>::zeros([p, d], &device);

        // Propagation: the prior of every slot at once, then the slots in order.
        let all = Slot {
            what: rows(c.what.clone()),
            where_: rows(c.where_.clone()),
            pres: c.pres.clone().reshape([p * k, 1]),
            logit: c.logit.clone().reshape([p * k, 1]),
        };
        let prior = self.prop_prior(&all, rows(c.prior.clone()));
        let per_slot = |x: &Tensor<2>, j: usize| slot3(&x.clone().reshape([p, k, x.dims()[1]]), j);
        let mut km1 = Slot { what: zeros(w), where_: zeros(4), pres: zeros(1), logit: zeros(1) };
        let mut h = self.propagation.rnn.initial(p);
        let mut props: Vec<SlotOut> = Vec::with_capacity(k);
        let (mut q_prop, mut p_prop, mut q_pres) = (zeros(1), zeros(1), zeros(1));
        for j in 0..k {
            let prev = tm1(j);
            let (out, h2) = self.propagate_step(img, &prev, slot3(&c.temporal, j), &km1, h, &slot_noise(j));
            h = h2;
            let PriorStats { logit, where_loc, where_scale, what_loc, what_scale, .. } = &prior;
            let stats = (
                &per_slot(logit, j),
                &per_slot(where_loc, j),
                &per_slot(where_scale, j),
                &per_slot(what_loc, j),
                &per_slot(what_scale, j),
            );
            let [qc, pc, qd, pd] = prop_log_probs(self, &out, prev.pres, stats);
            q_prop = q_prop + qc + qd.clone();
            p_prop = p_prop + pc + pd;
            q_pres = q_pres + qd;
            km1 = out.z.clone();
            props.push(out);
        }

        // Discovery, conditioned on what propagation kept and on the prior's expected presence.
        let latents =
            Tensor::cat(props.iter().map(|o| Tensor::cat(vec![o.z.what.clone(), o.z.where_.clone()], 1)).collect(), 0);
        let prop_pres: Vec<Tensor<2>> = props.iter().map(|o| o.z.pres.clone()).collect();
        let pres_rows = Tensor::cat(prop_pres.clone(), 0);
        let encoded = self.latent_encoder.forward(latents) * pres_rows;
        let cond = encoded.reshape([k, p, s.hidden]).sum_dim(0).reshape([p, s.hidden]);
        let prior_probs = burn::tensor::activation::sigmoid(prior.logit.clone()).sub_scalar(0.5).div_scalar(k as f32);
        let prior_cond = prior_probs.reshape([p, k]).sum_dim(1);
        let code = self.input_encoder.forward(img.clone().reshape([p, s.image[0] * s.image[1]]));
        let mut prev = Slot { what: zeros(w), where_: zeros(4), pres: zeros(1).add_scalar(1.0), logit: zeros(1) };
        let mut h = self.discovery.rnn.initial(p);
        let mut discs: Vec<SlotOut> = Vec::with_capacity(k);
        for j in 0..k {
            let (out, h2) = self.discover_step(img, code.clone(), cond.clone(), &prev, h, &slot_noise(k + j));
            h = h2;
            prev = out.z.clone();
            discs.push(out);
        }
        // The count as one-hot [P, K + 1]: presence runs 1…1 0…0, so its steps are the differences.
        let run: Vec<Tensor<2>> = std::iter::once(zeros(1).add_scalar(1.0))
            .chain(discs.iter().map(|o| o.z.pres.clone()))
            .chain(std::iter::once(zeros(1)))
            .collect();
        let one_hot = Tensor::cat((0..=k).map(|i| run[i].clone() - run[i + 1].clone()).collect(), 1);
        let step_logits = Tensor::cat(discs.iter().map(|o| o.z.logit.clone()).collect(), 1);
        let count_q = self.disc_count_log_q(step_logits, one_hot.clone());
        let count_p = self.disc_count_log_p(one_hot, prior_cond.clone(), t);
        let where_cond = Tensor::cat(vec![cond, prior_cond], 1);
        let wheres: Vec<Tensor<2>> = discs.iter().map(|o| o.z.where_.clone()).collect();
        let where_p = self.disc_where_log_p(&wheres, where_cond);
        let (mut q_disc, mut p_disc) = (count_q.clone(), count_p);
        for (o, wp) in discs.iter().zip(where_p) {
            let z = &o.z;
            let q = normal_log_prob(z.what.clone(), o.what_loc.clone(), o.what_scale.clone()).sum_dim(1)
                + normal_log_prob(z.where_.clone(), o.where_loc.clone(), o.where_scale.clone()).sum_dim(1);
            let std = Tensor::<2>::ones([p, w], &device);
            let p_what = normal_log_prob(z.what.clone(), zeros(w), std).sum_dim(1);
            q_disc = q_disc + q * z.pres.clone();
            p_disc = p_disc + (p_what + wp) * z.pres.clone();
        }

        let next = self.merge(c, &props, &discs, &prior.state);
        let canvas =
            self.decode(rows(next.what.clone()), rows(next.where_.clone()), next.pres.clone().reshape([p * k, 1]));
        let data_ll = self.data_log_likelihood(img.clone(), canvas.clone());
        let (log_q, log_p) = (q_prop + q_disc, p_prop + p_disc);
        let sum = |v: &[Tensor<2>]| Tensor::cat(v.to_vec(), 1).sum_dim(1);
        let frame = Frame {
            log_weight: data_ll.clone() - (log_q.clone() - log_p.clone()),
            data_ll,
            log_q,
            log_p,
            discrete_log_q: q_pres + count_q,
            steps: next.pres.clone().sum_dim(1),
            prop_steps: sum(&prop_pres),
            disc_steps: sum(&discs.iter().map(|o| o.z.pres.clone()).collect::<Vec<_>>()),
            canvas,
        };
        (frame, next)
    }

    /// `_choose_latents`: propagated then discovered slots, present ones first in their order,
    /// the first K kept; new objects get the next ids and the learned initial GRU states.
    fn merge(&self, c: &Carry, props: &[SlotOut], discs: &[SlotOut], prior_state: &Tensor<2>) -> Carry {
        let s = &self.shape;
        let (k, w, h) = (s.steps, s.n_what, s.hidden);
        let p = c.pres.dims()[0];
        let device = c.pres.device();
        // Ids: propagated keep theirs, discovered count on from the last used one.
        let prop_pres = Tensor::cat(props.iter().map(|o| o.z.pres.clone()).collect(), 1);
        let disc_pres = Tensor::cat(discs.iter().map(|o| o.z.pres.clone()).collect(), 1);
        let absent = |pres: &Tensor<2>| pres.clone().neg().add_scalar(1.0);
        let prop_ids = c.ids.clone() * prop_pres.clone() - absent(&prop_pres);
        let increments = disc_pres.clone().cumsum(1);
        let disc_ids = (increments.clone() + c.last_id.clone()) * disc_pres.clone() - absent(&disc_pres);
        let last_id = c.last_id.clone() + increments.slice([0..p, k - 1..k]);
        let ids = Tensor::cat(vec![prop_ids, disc_ids], 1);

        let prior_state = prior_state.clone().reshape([p, k, h]);
        let new_temporal = self.propagation.temporal.initial(p);
        let new_prior = self.prop_prior.rnn.initial(p);
        let fields = |o: &SlotOut, temporal: Tensor<2>, prior: Tensor<2>, j: usize| {
            let z = &o.z;
            Tensor::cat(
                vec![z.what.clone(), z.where_.clone(), z.pres.clone(), z.logit.clone(), temporal, prior, col(&ids, j)],
                1,
            )
        };
        let mut all: Vec<Tensor<2>> = Vec::with_capacity(2 * k);
        for (j, o) in props.iter().enumerate() {
            all.push(fields(o, o.temporal.clone().expect("a propagated slot"), slot3(&prior_state, j), j));
        }
        for (j, o) in discs.iter().enumerate() {
            all.push(fields(o, new_temporal.clone(), new_prior.clone(), k + j));
        }
        let all = stack(all);
        // The stable present-first order as a [P, K, 2K] selection: slot j goes to its rank.
        let pres = Tensor::cat(vec![prop_pres, disc_pres], 1);
        let n_present = pres.clone().sum_dim(1);
        let rank = pres.clone() * pres.clone().cumsum(1).sub_scalar(1.0)
            + absent(&pres) * (absent(&pres).cumsum(1) + n_present).sub_scalar(1.0);
        let targets: Vec<f32> = (0..k).map(|r| r as f32).collect();
        let targets = Tensor::<1>::from_floats(targets.as_slice(), &device).reshape([1, k, 1]).expand([p, k, 2 * k]);
        let select = rank.reshape([p, 1, 2 * k]).expand([p, k, 2 * k]).equal(targets).float();
        let kept = select.matmul(all);
        let d = kept.dims()[2];
        let field = |a: usize, b: usize| kept.clone().slice([0..p, 0..k, a..b]);
        let flat = |x: Tensor<3>| x.reshape([p, k]);
        Carry {
            what: field(0, w),
            where_: field(w, w + 4),
            pres: flat(field(w + 4, w + 5)),
            logit: flat(field(w + 5, w + 6)),
            temporal: field(w + 6, w + 6 + h),
            prior: field(w + 6 + h, w + 6 + 2 * h),
            ids: flat(field(d - 1, d)),
            last_id,
        }
    }
}

/// A sequence's terms: per row [P, 1] summed over frames, and per frame.
pub struct Unrolled {
    pub log_weight: Tensor<2>,
    pub discrete_log_q: Tensor<2>,
    pub frames: Vec<Frame>,
    pub carries: Vec<Carry>,
}

impl SqairNet {
    /// Unroll frames [T, P, H, W]; the noise of each frame comes from `shard` (rows P are the
    /// shard's samples × particles, particles of a sample adjacent).
    pub fn unroll(&self, frames: &Tensor<4>, shard: &Shard) -> Unrolled {
        let [t_len, p, h, w] = frames.dims();
        let device = frames.device();
        let s = &self.shape;
        let mut carry = self.initial_carry(p, &device);
        let mut out = Unrolled {
            log_weight: Tensor::zeros([p, 1], &device),
            discrete_log_q: Tensor::zeros([p, 1], &device),
            frames: Vec::with_capacity(t_len),
            carries: Vec::with_capacity(t_len),
        };
        for t in 0..t_len {
            let img = frames.clone().slice([t..t + 1, 0..p, 0..h, 0..w]).reshape([p, h, w]);
            let normals = shard.normal(0.0, 1.0, [p, 2 * s.steps, 4 + s.n_what], &device);
            let uniforms = shard.uniform([p, 2 * s.steps, 1], &device);
            let (frame, next) = self.frame(&img, &carry, t, (&normals, &uniforms));
            out.log_weight = out.log_weight + frame.log_weight.clone();
            out.discrete_log_q = out.discrete_log_q + frame.discrete_log_q.clone();
            out.frames.push(frame);
            out.carries.push(next.clone());
            carry = next;
        }
        out
    }
}
