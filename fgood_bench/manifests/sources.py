"""Where each source dataset comes from, its terms and its reference: the licence part of an export's card.

The images of an export stay under their dataset's terms. Only what a project page says is
quoted here; where a page states no licence the entry says so and points at the page.
"""

from __future__ import annotations

from dataclasses import dataclass

SEE_PAGE = "No licence is stated in fgood-bench's sources; read the terms on the project page before redistributing."


@dataclass(frozen=True)
class Source:
    homepage: str
    terms: str
    reference: str


SOURCES = {
    "cub": Source(
        "https://www.vision.caltech.edu/datasets/cub_200_2011/", SEE_PAGE,
        "C. Wah, S. Branson, P. Welinder, P. Perona, S. Belongie. The Caltech-UCSD Birds-200-2011 Dataset. "
        "Caltech technical report CNS-TR-2011-001, 2011."),
    "thudogs": Source(
        "https://cg.cs.tsinghua.edu.cn/ThuDogs/", SEE_PAGE,
        "D.-N. Zou, S.-H. Zhang, T.-J. Mu, M. Zhang. A new dataset of dog breed images and a benchmark for "
        "fine-grained classification. Computational Visual Media 6, 2020."),
    "flowers102": Source(
        "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/", SEE_PAGE,
        "M.-E. Nilsback, A. Zisserman. Automated flower classification over a large number of classes. ICVGIP 2008."),
    "stanford_cars": Source(
        "https://ai.stanford.edu/~jkrause/cars/car_dataset.html", SEE_PAGE,
        "J. Krause, M. Stark, J. Deng, L. Fei-Fei. 3D Object Representations for Fine-Grained Categorization. "
        "3dRR workshop at ICCV 2013."),
    "fgvc_aircraft": Source(
        "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        # the dataset's README: "made available for non-commercial research purposes only by a number of
        # airplane spotters ... the original authors retain the copyright"
        "Non-commercial research use only; the photographers keep the copyright of their photographs.",
        "S. Maji, J. Kannala, E. Rahtu, M. Blaschko, A. Vedaldi. Fine-Grained Visual Classification of Aircraft. "
        "arXiv:1306.5151, 2013."),
    "places365": Source(
        "http://places2.csail.mit.edu/", SEE_PAGE,
        "B. Zhou, A. Lapedriza, A. Khosla, A. Oliva, A. Torralba. Places: A 10 Million Image Database for Scene "
        "Recognition. IEEE TPAMI, 2017."),
    "dtd": Source(
        "https://www.robots.ox.ac.uk/~vgg/data/dtd/", SEE_PAGE,
        "M. Cimpoi, S. Maji, I. Kokkinos, S. Mohamed, A. Vedaldi. Describing Textures in the Wild. CVPR 2014."),
    "imagenet": Source(
        "https://image-net.org/",
        # image-net.org's terms of access: the database is for "non-commercial research and educational purposes"
        "ImageNet's terms of access: non-commercial research and educational use only.",
        "O. Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV 115, 2015."),
    "webvision": Source(
        "https://data.vision.ee.ethz.ch/cvl/webvision/", SEE_PAGE,
        "W. Li, L. Wang, W. Li, E. Agustsson, L. Van Gool. WebVision Database: Visual Learning and Understanding "
        "from Web Data. arXiv:1708.02862, 2017."),
    "minc2500": Source(
        "http://opensurfaces.cs.cornell.edu/publications/minc/", SEE_PAGE,
        "S. Bell, P. Upchurch, N. Snavely, K. Bala. Material Recognition in the Wild with the Materials in Context "
        "Database. CVPR 2015."),
}

UNKNOWN = Source("", "Images of a folder of the user's own: their terms are the owner's to check.", "")


def source_of(dataset_id: str) -> Source:
    return SOURCES.get(dataset_id, UNKNOWN)
